"""Small ASGI helpers shared by the middlewares and the proxy."""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send

from relaygate.context import get_context
from relaygate.errors import ClientDisconnected, PayloadTooLargeError
from relaygate.requests import parse_json_object

__all__ = ["MODEL_ENDPOINTS", "header", "model_call", "read_body", "read_json_body", "route_path", "send_json"]

Headers = list[tuple[bytes, bytes]]


def route_path(scope: Scope) -> str:
    """The path below the mount point.

    Since Starlette 0.35 (PR #2400) and uvicorn's --root-path, ``path`` holds the full path and
    ``root_path`` the mount prefix, so a mounted app strips the prefix itself.
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


# The paths of model calls (below any mount point and project prefix) and the name of each endpoint.
MODEL_ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/images/generations": "images",
}


def model_call(scope: Scope) -> str | None:
    """The endpoint (``chat``, ``embeddings``, ``images``) when the request is a model call, else ``None``:
    what the ledger records, limits count and guards check."""
    if scope["method"] != "POST":
        return None
    path = route_path(scope)
    return MODEL_ENDPOINTS.get(path.rstrip("/") if len(path) > 1 else path)


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case), decoded as latin-1 as ASGI servers deliver it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes before reading them when possible."""
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLargeError(f"Request body is {length} bytes; the limit is {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"Request body is over the limit of {limit} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    response_headers: Headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if headers:
        response_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


async def read_json_body(scope: Scope, receive: Receive, limit: int) -> dict[str, Any]:
    """The request's JSON object, read and parsed once per request and kept on the context.

    A model call that came in another dialect (``ctx.dialect``) is read here too: the dialect turns its body
    into the canonical chat request, which is what every layer inside sees. It happens at the first read,
    after auth, and a bad body is a :class:`~relaygate.errors.GatewayError` like any other.
    """
    ctx = get_context(scope)
    if ctx.body is None:
        raw = await read_body(scope, receive, limit)
        dialect = ctx.dialect
        ctx.body = await dialect.canonical(raw) if dialect is not None and dialect.calls else parse_json_object(raw)
    return ctx.body
