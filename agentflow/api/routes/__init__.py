"""One router per domain; ``agentflow.api.main.ROUTERS`` lists the modules the app includes."""
