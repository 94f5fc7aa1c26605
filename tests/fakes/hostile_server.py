"""A provider that behaves badly on purpose, served over real HTTP in tests: one server speaking three dialects.

Paths: ``/openai/v1/chat/completions`` (and ``/embeddings``), ``/anthropic/v1/messages`` and
``/gemini/v1beta/models/{model}:{generateContent|streamGenerateContent}``, so that one server can sit
behind providers of every kind (base URLs ``{url}/openai/v1``, ``{url}/anthropic/v1``,
``{url}/gemini/v1beta``). What it does is chosen by the model name:

- ``echo-4xx``: a 400 whose message, ``param`` and code echo the credentials it was sent (every request
  header that could carry one: ``authorization``, ``x-api-key``, ``x-goog-api-key``, custom ones), as
  careless OpenAI-compatible servers and proxies do, and the request's ``user`` when it has one;
- ``echo-401``: a 401 "Incorrect API key provided: <the key>";
- ``echo-5xx``: a 502 whose plain-text body dumps the request headers;
- ``echo-midstream``: a 200 stream with some text, then an ``error`` event echoing the credentials;
- ``html``: a 200 whose body is an HTML error page (stream or not); ``json-error``: a 200 JSON error body
  to a streamed request; ``empty``: a 200 ``text/event-stream`` with an empty body;
- ``cut``: an answer cut off mid-body: a whole answer promises more bytes than it sends, a stream sends
  one chunk; then the connection is dropped;
- ``limited-<n>``: a 429 with ``Retry-After: <n>`` (Anthropic's ``rate_limit_error``, Google's
  ``RESOURCE_EXHAUSTED`` with its ``RetryInfo``);
- ``overbill``: an ordinary answer whose usage says ten times the request's ``max_tokens`` were written;
- ``usage-<kind>``: an ordinary answer whose output token count is out of range: ``negative`` (-5),
  ``fraction`` (2.5), ``huge`` (2**60), ``inf`` (1e308), ``text`` ("5");
- ``slow-<s>``: answers after ``s`` seconds; a client that hangs up first is recorded in
  :attr:`HostileProvider.hung_up` (and the answer is never written: :attr:`HostileProvider.answered`);
- anything else: an ordinary answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.types import Receive, Scope, Send

from tests.fakes.recording import Seen, read_request

REPLY = "Hello from the hostile upstream"
# Headers that carry no credential, never echoed.
PLAIN_HEADERS = frozenset(
    {"host", "content-length", "content-type", "accept", "accept-encoding", "user-agent", "traceparent", "tracestate"}
)
HTML_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


@dataclass
class HostileProvider:
    requests: list[Seen] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def models_seen(self) -> list[str]:
        return [_model(r) for r in self.requests]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen = await read_request(scope, receive, empty={})
        with self._lock:
            self.requests.append(seen)
        dialect = seen.path.split("/")[1]
        model = _model(seen)
        body: dict[str, Any] = seen.body if isinstance(seen.body, dict) else {}
        stream = bool(body.get("stream")) or seen.path.endswith(":streamGenerateContent")
        secrets = _credentials(seen.headers)
        if model.startswith("slow-"):
            if not await _sleep_unless_hung_up(float(model.removeprefix("slow-")), receive):
                self.hung_up.append(model)
                return
            self.answered.append(model)
        if model == "echo-4xx":
            user = f" for user {body['user']}" if isinstance(body.get("user"), str) else ""
            message = f"Invalid request{user}: the headers were {secrets}"
            await _send_error(send, dialect, 400, message, echo=secrets)
        elif model == "echo-401":
            await _send_error(send, dialect, 401, f"Incorrect API key provided: {secrets}. Find yours elsewhere.")
        elif model == "echo-5xx":
            dump = "\n".join(f"{name}: {value}" for name, value in seen.headers.items())
            await _raw(send, 502, f"upstream proxy failed; request was:\n{dump}\n".encode(), b"text/plain")
        elif model.startswith("limited-"):
            await _rate_limited(send, dialect, int(model.removeprefix("limited-")))
        elif model == "html":
            await _raw(send, 200, HTML_PAGE, b"text/html; charset=utf-8")
        elif model == "json-error" and stream:
            error = {"error": {"message": f"stream not supported for key {secrets}", "type": "server_error"}}
            await _raw(send, 200, orjson.dumps(error), b"application/json")
        elif model == "empty" and stream:
            await _raw(send, 200, b"", b"text/event-stream")
        elif model == "cut" and not stream:
            await send({"type": "http.response.start", "status": 200, "headers": _headers(b"application/json", 5000)})
            await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-cut", "choices"', "more_body": True})
            raise RuntimeError("the hostile upstream drops the connection mid-answer")
        elif stream:
            await self._stream(send, dialect, model, body, secrets)
        else:
            await _raw(send, 200, orjson.dumps(_answer(dialect, model, body)), b"application/json")

    async def _stream(self, send: Send, dialect: str, model: str, body: dict[str, Any], secrets: str) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        async def event(payload: dict[str, Any], name: str | None = None) -> None:
            head = b"event: " + name.encode() + b"\n" if name else b""
            raw = head + b"data: " + orjson.dumps(payload) + b"\n\n"
            await send({"type": "http.response.body", "body": raw, "more_body": True})

        for name, payload in _stream_events(dialect, model, body):
            await event(payload, name)
        if model == "cut":
            raise RuntimeError("the hostile upstream drops the connection mid-stream")
        if model == "echo-midstream":
            message = f"internal error while using credentials {secrets}"
            if dialect == "anthropic":
                await event({"type": "error", "error": {"type": "api_error", "message": message}}, "error")
            elif dialect == "gemini":
                await event({"error": {"code": 500, "message": message, "status": "INTERNAL"}})
            else:
                await event({"error": {"message": message, "type": "server_error", "param": secrets, "code": None}})
        elif dialect == "openai":
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _model(seen: Seen) -> str:
    if seen.path.startswith("/gemini/"):
        return unquote(seen.path.rsplit("/", 1)[-1].partition(":")[0])
    body = seen.body if isinstance(seen.body, dict) else {}
    return str(body.get("model", ""))


def _credentials(headers: dict[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in headers.items() if name not in PLAIN_HEADERS)


async def _sleep_unless_hung_up(seconds: float, receive: Receive) -> bool:
    """Wait ``seconds``; ``False`` as soon as the client hangs up instead."""
    watcher = asyncio.ensure_future(receive())
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if watcher.done():
                return bool(watcher.result()["type"] != "http.disconnect")
            await asyncio.sleep(0.01)
        return True
    finally:
        watcher.cancel()


def _max_tokens(body: dict[str, Any]) -> int:
    config = body.get("generationConfig") or {}
    value = body.get("max_completion_tokens") or body.get("max_tokens") or config.get("maxOutputTokens") or 16
    return int(value)


BAD_USAGE: dict[str, Any] = {"negative": -5, "fraction": 2.5, "huge": 2**60, "inf": 1e308, "text": "5"}


def _usage(dialect: str, model: str, body: dict[str, Any]) -> dict[str, Any]:
    output: Any = _max_tokens(body) * 10 if model == "overbill" else 5
    if model.startswith("usage-"):
        output = BAD_USAGE[model.removeprefix("usage-")]
    total = 11 + output if isinstance(output, int | float) else output
    if dialect == "anthropic":
        return {"input_tokens": 11, "output_tokens": output}
    if dialect == "gemini":
        return {"promptTokenCount": 11, "candidatesTokenCount": output, "totalTokenCount": total}
    return {"prompt_tokens": 11, "completion_tokens": output, "total_tokens": total}


def _answer(dialect: str, model: str, body: dict[str, Any]) -> dict[str, Any]:
    usage = _usage(dialect, model, body)
    if dialect == "anthropic":
        return {
            "id": "msg_hostile",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": REPLY}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
    if dialect == "gemini":
        content = {"role": "model", "parts": [{"text": REPLY}]}
        return {"candidates": [{"content": content, "finishReason": "STOP", "index": 0}], "usageMetadata": usage}
    message = {"role": "assistant", "content": REPLY}
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": usage,
    }


def _stream_events(dialect: str, model: str, body: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """The events of an answer; for ``echo-midstream`` and ``cut``, only its first text."""
    partial = model in ("echo-midstream", "cut")
    usage = _usage(dialect, model, body)
    if dialect == "anthropic":
        start = {"id": "msg_hostile", "type": "message", "role": "assistant", "model": model, "content": []}
        events: list[tuple[str | None, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": {**start, "usage": {**usage, "output_tokens": 1}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": REPLY}},
            ),
        ]
        if partial:
            return events
        return [
            *events,
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    if dialect == "gemini":
        text = {"candidates": [{"content": {"role": "model", "parts": [{"text": REPLY}]}, "index": 0}]}
        if partial:
            return [(None, text)]
        done = {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "STOP", "index": 0}]}
        return [(None, text), (None, {**done, "usageMetadata": usage})]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {
            "id": "chatcmpl-hostile",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [choice],
        }

    events = [(None, chunk({"role": "assistant", "content": ""})), (None, chunk({"content": REPLY}))]
    if partial:
        return events
    final = {**chunk({}), "choices": [], "usage": usage}
    return [*events, (None, chunk({}, "stop")), (None, final)]


async def _send_error(send: Send, dialect: str, status: int, message: str, *, echo: str | None = None) -> None:
    if dialect == "anthropic":
        kind = "authentication_error" if status == 401 else "invalid_request_error"
        payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    elif dialect == "gemini":
        grpc = "UNAUTHENTICATED" if status == 401 else "INVALID_ARGUMENT"
        payload = {"error": {"code": status, "message": message, "status": grpc}}
    else:
        error = {"message": message, "type": "invalid_request_error", "param": echo, "code": echo and f"bad_{echo}"}
        payload = {"error": error}
    await _raw(send, status, orjson.dumps(payload), b"application/json")


async def _rate_limited(send: Send, dialect: str, seconds: int) -> None:
    message = f"Rate limit reached; try again in {seconds}s."
    if dialect == "anthropic":
        payload: dict[str, Any] = {"type": "error", "error": {"type": "rate_limit_error", "message": message}}
    elif dialect == "gemini":
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}
        payload = {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": [retry]}}
    else:
        payload = {"error": {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    await _raw(send, 429, orjson.dumps(payload), b"application/json", [(b"retry-after", str(seconds).encode())])


def _headers(content_type: bytes, length: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"content-length", str(length).encode())]


async def _raw(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_headers(content_type, len(body)), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})
