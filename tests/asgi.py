"""Driving an ASGI app by hand, to see the order of what it sends (test clients buffer bodies)."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.types import ASGIApp, Message


def http_scope(
    path: str,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    root_path: str = "",
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


class Exchange:
    """One request: a ``receive`` that gives the body, then disconnects when told to, and a collecting ``send``."""

    def __init__(self, body: bytes = b"", *, disconnect_after_chunks: int | None = None) -> None:
        self.body = body
        self.messages: list[Message] = []
        self.disconnect_after_chunks = disconnect_after_chunks
        self._body_sent = False
        self._disconnected = anyio.Event()

    async def receive(self) -> Message:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        chunks = [m for m in self.messages if m["type"] == "http.response.body" and m.get("body")]
        if self.disconnect_after_chunks is not None and len(chunks) >= self.disconnect_after_chunks:
            self._disconnected.set()
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._disconnected.set()

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def chunks(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body" and m.get("body")]

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()


async def run(app: ASGIApp, scope: dict[str, Any], exchange: Exchange) -> Exchange:
    await app(scope, exchange.receive, exchange.send)
    return exchange
