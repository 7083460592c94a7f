"""The HTTP API (spec section 12): FastAPI routes over the same package the CLI and pages use.

    main.py        the app factory ``create_app(store=..., settings=...)`` and ``app``
                   (``uvicorn agentflow.api.main:app``); routers are included from a list
    context.py     what a process's app shares: the store (opened on first use), the cache of
                   validated saved workflows, background runs, sign-in threads
    auth.py        bearer tokens (session JWTs and API keys) as dependencies, roles
    errors.py      every non-2xx answer in the section 9 shape (OpenAI's shape under /v1/),
                   the body-size limit, and the error responses declared in OpenAPI
    requests.py    request bodies (pydantic), checked before any route code runs
    responses.py   response bodies, for the OpenAPI document and generated clients
    running.py     runs as JSON answers or Server-Sent Events, recorded in the run history
    routes/        one router per domain: health, auth, workflows, runs, sources, queues,
                   secrets, openai_compat

No route holds logic the CLI or the workbench lacks (design decision 11): each one
translates between HTTP and a store method or a runtime function.
"""
