"""A downstream app that answers with what the layers above put in the request context."""

from __future__ import annotations

import orjson
from starlette.types import Receive, Scope, Send

from relaygate.context import get_context


async def context_echo(scope: Scope, receive: Receive, send: Send) -> None:
    ctx = get_context(scope)
    body = orjson.dumps(
        {
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode(),
            "project_id": ctx.project_id,
            "key_id": ctx.key.id if ctx.key else None,
            "is_admin": ctx.is_admin,
            "trace_id": ctx.trace_id,
            "thread_id": ctx.thread_id,
            "run_id": ctx.run_id,
            "label": ctx.label,
            "tags": ctx.tags,
        }
    )
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
