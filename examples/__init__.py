"""Runnable examples of relaygate inside host apps (``uvicorn examples.fastapi_app:app``)."""
