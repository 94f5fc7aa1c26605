"""What every fake upstream shares: reading a request whole and keeping what it saw."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import Receive, Scope

__all__ = ["Seen", "read_request", "tick_until_disconnect"]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, list[str]] = field(default_factory=dict)
    raw: bytes = b""


async def read_request(scope: Scope, receive: Receive, *, empty: Any = None) -> Seen:
    """The request as the fake saw it; a JSON body is parsed, an empty one is ``empty``."""
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    query = parse_qs(scope["query_string"].decode())
    return Seen(scope["method"], scope["path"], headers, orjson.loads(raw) if raw else empty, query, raw)


async def tick_until_disconnect(
    receive: Receive, tick: Callable[[int], Awaitable[None]], disconnected: threading.Event
) -> None:
    """An endless stream: ``tick(n)`` every 20 ms until the client leaves, which sets ``disconnected``."""
    watcher = asyncio.ensure_future(receive())
    sent = 0
    try:
        while not watcher.done():
            sent += 1
            await tick(sent)
            await asyncio.sleep(0.02)
        if watcher.result()["type"] == "http.disconnect":
            disconnected.set()
    finally:
        watcher.cancel()
