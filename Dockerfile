# AgentFlow workbench: `streamlit run app.py` listening on 0.0.0.0:8501.
#
# Reachable from other machines, so sign-in is required: until a user exists the workbench
# shows only how to add one. Several replicas share one Postgres store (AGENTFLOW_DB_URL)
# and Redis queues (AGENTFLOW_REDIS_URL); see README.md, "Deploy".
#
#   docker build -t agentflow .
#   docker run --rm -i -v agentflow-data:/data agentflow python -m agentflow users add admin --role admin
#   docker run -p 8501:8501 -v agentflow-data:/data agentflow
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGENTFLOW_HOME=/data \
    AGENTFLOW_REQUIRE_SIGNIN=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 10001 agentflow \
    && mkdir -p /data \
    && chown agentflow:agentflow /data
USER agentflow
VOLUME ["/data"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]

CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
