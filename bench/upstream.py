"""A fake OpenAI upstream fast enough never to be what a benchmark measures.

A raw asyncio protocol on uvloop with httptools' parser: no framework, answers prebuilt. It serves

- ``POST /v1/chat/completions`` with ``model: bench-json``: a ~1 KB chat completion, at once;
- the same with ``stream: true`` and ``model: bench-stream-<N>x<G>ms``: an SSE stream of a role chunk,
  N content chunks ``G`` ms apart, a finish chunk, the usage chunk when ``stream_options.include_usage``
  asks for it, and ``[DONE]``;
- ``model: bench-tool``: a call of the tool ``bench__ping``, or, once a tool result ends the conversation, the
  ~1 KB completion (the benchmark's one-tool MCP loop);
- ``GET /v1/models`` and ``GET /health``;
- ``POST /v1/traces`` and ``/v1/metrics``: OTLP/HTTP exports, accepted and dropped.

Run: ``python -m bench.upstream --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from functools import lru_cache
from typing import Any

import httptools
import orjson
import uvloop

JSON_MODEL = "bench-json"
# Calls the MCP tool bench__ping, then, once its result is in the conversation, answers (a one-tool loop).
TOOL_MODEL = "bench-tool"
TOOL_CALL = "bench__ping"
STREAM_MODEL = re.compile(r"^bench-stream-(\d+)x(\d+)ms$")
# About 1 KB of answer, as a short paragraph of a real reply would be.
ANSWER = ("The quick brown fox jumps over the lazy dog. " * 20)[:900]
USAGE = {"prompt_tokens": 12, "completion_tokens": 200, "total_tokens": 212}


def stream_model(chunks: int, gap_ms: int) -> str:
    return f"bench-stream-{chunks}x{gap_ms}ms"


def _response(status: bytes, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type + b"\r\ncontent-length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


@lru_cache(maxsize=64)
def _completion(model: str) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": USAGE,
    }
    return _response(b"200 OK", b"application/json", orjson.dumps(body))


@lru_cache(maxsize=4)
def _tool_call(model: str) -> bytes:
    call = {"id": "call_bench", "type": "function", "function": {"name": TOOL_CALL, "arguments": "{}"}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    body = {
        "id": "chatcmpl-bench-tool",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls", "logprobs": None}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50},
    }
    return _response(b"200 OK", b"application/json", orjson.dumps(body))


MODELS = _response(
    b"200 OK",
    b"application/json",
    orjson.dumps({"object": "list", "data": [{"id": JSON_MODEL, "object": "model", "owned_by": "bench"}]}),
)
HEALTH = _response(b"200 OK", b"application/json", b'{"status":"ok"}')
# An OTLP/HTTP export answered with an empty Export*ServiceResponse (zero bytes of protobuf), so the
# gateway's span exporter has somewhere to send to.
OTLP_ACCEPTED = _response(b"200 OK", b"application/x-protobuf", b"")
NOT_FOUND = _response(b"404 Not Found", b"application/json", b'{"error":{"message":"not found","type":"bench"}}')
BAD_REQUEST = _response(b"400 Bad Request", b"application/json", b'{"error":{"message":"bad body","type":"bench"}}')
STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk holding one SSE event."""
    event = b"data: " + data + b"\n\n"
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


@lru_cache(maxsize=64)
def _stream_parts(model: str, chunks: int) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    piece = ANSWER[: max(1, len(ANSWER) // max(chunks, 1))]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _chunk(orjson.dumps({**base, "choices": [choice]}))

    role = chunk({"role": "assistant", "content": ""})
    content = chunk({"content": piece})
    finish = chunk({}, "stop")
    usage = _chunk(orjson.dumps({**base, "choices": [], "usage": USAGE}))
    done = _chunk(b"[DONE]") + b"0\r\n\r\n"
    return role, content, finish, usage, done


class _Connection(asyncio.Protocol):
    __slots__ = ("_body", "_loop", "_parser", "_streaming", "_transport", "_url")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._streaming: list[asyncio.TimerHandle] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in self._streaming:
            handle.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        transport = self._transport
        if transport is None:
            return
        path = self._url.split(b"?", 1)[0]
        method = self._parser.get_method()
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self._chat(transport)
        elif method == b"POST" and path in (b"/v1/traces", b"/v1/metrics"):
            transport.write(OTLP_ACCEPTED)
        elif path.endswith(b"/models"):
            transport.write(MODELS)
        elif path.endswith(b"/health"):
            transport.write(HEALTH)
        else:
            transport.write(NOT_FOUND)

    def _chat(self, transport: asyncio.Transport) -> None:
        try:
            request = orjson.loads(b"".join(self._body))
            model = request["model"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            transport.write(BAD_REQUEST)
            return
        if model == TOOL_MODEL and not request.get("stream"):
            messages = request.get("messages") or [{}]
            called = isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
            transport.write(_completion(model) if called else _tool_call(model))
            return
        matched = STREAM_MODEL.match(model) if isinstance(model, str) else None
        if not request.get("stream"):
            transport.write(_completion(model) if isinstance(model, str) else BAD_REQUEST)
            return
        chunks, gap = (int(matched[1]), int(matched[2])) if matched else (10, 0)
        options = request.get("stream_options") or {}
        role, content, finish, usage, done = _stream_parts(model, chunks)
        transport.write(STREAM_HEAD + role)
        tail = finish + (usage if options.get("include_usage") else b"") + done
        if gap == 0:
            transport.write(content * chunks + tail)
            return
        # Paced with timers rather than a task per stream: a thousand streams cost a thousand timers.
        start = self._loop.time()
        self._streaming = [
            self._loop.call_at(
                start + gap * (i + 1) / 1000, transport.write, content + (tail if i == chunks - 1 else b"")
            )
            for i in range(chunks)
        ]


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Connection, host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
