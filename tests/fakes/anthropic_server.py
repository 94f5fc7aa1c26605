"""A fake Anthropic Messages API speaking the real wire format, served over real HTTP in tests.

It checks requests the way Anthropic does (unknown fields, required ``max_tokens``, alternating roles
starting with the user, no empty or whitespace-only text, ``tool_result`` right after ``tool_use``,
tools defined for tool blocks, ``temperature`` in [0, 1] and not with ``top_p``, ...) and answers a
violation with a 400, so that tests notice a request Anthropic would refuse. Its answer is chosen by
the model name:

- any ordinary name: a text reply (``REPLY``), as JSON or as an SSE stream derived from the same message;
- ``tools``: a text block, then ``get_weather`` with arguments and ``get_time`` without (``tool_use``);
- ``tool-only``: one ``tool_use`` block and no text;
- ``json``: the forced tool's input when ``tool_choice`` names one (json_object emulation), else JSON text;
- ``stop-<reason>``: the text reply with that ``stop_reason``;
- ``status-<code>``: that status with Anthropic's error body (429 adds ``retry-after: 7``);
- ``split``: a stream with CRLF framing cut across reads inside UTF-8 characters, lines and CRLFs, with
  a ``:`` comment and an event of an unknown type;
- ``overloaded-mid-stream``: a 200 stream whose third event is ``event: error`` (``overloaded_error``);
- ``truncated``: a stream that stops after some text, without ``message_delta`` or ``message_stop``;
- ``gated``: streams the first text, then waits (up to 5 s) for :attr:`FakeAnthropic.gate` before the rest;
- ``endless``: streams a text delta every 20 ms until the client goes away, and records that it went;
- ``not-json``: a 200 whose body is an HTML page, as a misbehaving proxy in front of Anthropic might send;
- ``thinking``: a ``thinking`` block with its ``signature`` (streamed as ``thinking_delta`` and
  ``signature_delta``), then the text reply.

``POST /v1/messages/count_tokens`` checks the request as ``/v1/messages`` does (``max_tokens`` aside) and
answers ``{"input_tokens": count_of(request)}``; ``status-<code>`` answers that status there too.

Every response carries ``request-id: req_fake``. A wrong ``x-api-key`` is a 401 ``authentication_error``.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from tests.fakes.recording import Seen, read_request, tick_until_disconnect

API_KEY = "sk-ant-fake-key"
REPLY = "Hello from Claude"
SPLIT_TEXT = "héllo wörld 🎉 你好世界"
MODELS = ["claude-sonnet-4", "claude-haiku-4-5"]
REQUEST_ID = b"req_fake"
# Anthropic leaves cache reads and writes out of input_tokens.
USAGE = {"input_tokens": 12, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 30, "output_tokens": 9}
WEATHER_ARGS = {"city": "Paris", "unit": "celsius"}
THINKING = "The user greets me; I greet them back."
SIGNATURE = "sig-fake-EqQBCgIYAhIM"
JSON_ANSWER = {"answer": 42}

ALLOWED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "tools",
        "tool_choice",
        "stream",
        "output_config",
        "thinking",
        "service_tier",
        "context_management",
    }
)
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class FakeAnthropic:
    requests: list[Seen] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)

    def last(self) -> Seen:
        return [r for r in self.requests if r.path == "/v1/messages"][-1]

    def reset(self) -> None:
        self.requests.clear()
        self.disconnected.clear()
        self.gate.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen = await read_request(scope, receive, empty={})
        data: Any = seen.body
        headers = seen.headers
        self.requests.append(seen)
        if headers.get("x-api-key") != API_KEY:
            await _error(send, 401, "invalid x-api-key")
            return
        if scope["path"] == "/v1/models" and scope["method"] == "GET":
            entries = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-05-14T00:00:00Z"} for m in MODELS
            ]
            await _json(send, 200, {"data": entries, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})
            return
        if scope["path"] == "/v1/messages/count_tokens" and scope["method"] == "POST":
            await _count_tokens(data, send)
            return
        if scope["path"] != "/v1/messages" or scope["method"] != "POST":
            await _error(send, 404, f"no route {scope['method']} {scope['path']}")
            return
        problem = check_request(data, betas=headers.get("anthropic-beta", ""))
        if problem is not None:
            await _error(send, 400, problem)
            return
        model = data["model"]
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            extra = [(b"retry-after", b"7")] if status == 429 else []
            await _error(send, status, f"fake failure {status}", extra)
            return
        if model == "not-json":
            await _html(send, 200, b"<html><body>Service temporarily unavailable</body></html>")
            return
        reply = _message(data)
        if data.get("stream"):
            await self._stream(model, reply, receive, send)
        else:
            await _json(send, 200, reply)

    async def _stream(self, model: str, reply: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"request-id", REQUEST_ID)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def write(raw: bytes) -> None:
            await send({"type": "http.response.body", "body": raw, "more_body": True})

        events = stream_events(reply)
        if model == "split":
            # A comment and an event type added after the adapter was written ride along; both are ignored.
            extra = [("future_event", {"type": "future_event", "detail": "ignored"})]
            raw = b": keep-alive\r\n\r\n" + b"".join(
                _sse(name, payload, b"\r\n") for name, payload in [*events[:2], *extra, *events[2:]]
            )
            for piece in _awkward_pieces(raw):
                await write(piece)
                await asyncio.sleep(0.01)
        elif model == "overloaded-mid-stream":
            for name, payload in events[:3]:
                await write(_sse(name, payload))
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            await write(_sse("error", error))
        elif model == "truncated":
            for name, payload in events:
                if name == "message_delta":
                    break
                await write(_sse(name, payload))
        elif model == "gated":
            first_text = next(i for i, (name, _) in enumerate(events) if name == "content_block_delta")
            for name, payload in events[: first_text + 1]:
                await write(_sse(name, payload))
            # The gateway must have relayed the text already for the test to open the gate.
            opened = await asyncio.to_thread(self.gate.wait, 5)
            if not opened:
                await write(_sse("content_block_delta", _text_delta(0, " (the gateway held the stream back)")))
            for name, payload in events[first_text + 1 :]:
                await write(_sse(name, payload))
        elif model == "endless":
            await write(_sse(*events[0]))
            await write(
                _sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": _TEXT})
            )
            await tick_until_disconnect(
                receive, lambda _: write(_sse("content_block_delta", _text_delta(0, "tick "))), self.disconnected
            )
            return
        else:
            for name, payload in events:
                await write(_sse(name, payload))
        await send({"type": "http.response.body", "body": b"", "more_body": False})


_TEXT: dict[str, Any] = {"type": "text", "text": ""}


def _message(request: dict[str, Any]) -> dict[str, Any]:
    """The whole answer for ``request``; streams are derived from it."""
    model: str = request["model"]
    content: list[dict[str, Any]] = [{"type": "text", "text": REPLY}]
    stop_reason = "end_turn"
    if model == "tools":
        content = [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_weather", "name": "get_weather", "input": WEATHER_ARGS},
            {"type": "tool_use", "id": "toolu_time", "name": "get_time", "input": {}},
        ]
        stop_reason = "tool_use"
    elif model == "tool-only":
        content = [{"type": "tool_use", "id": "toolu_weather", "name": "get_weather", "input": WEATHER_ARGS}]
        stop_reason = "tool_use"
    elif model == "json":
        choice = request.get("tool_choice") or {}
        if choice.get("type") == "tool":
            content = [{"type": "tool_use", "id": "toolu_json", "name": choice["name"], "input": JSON_ANSWER}]
            stop_reason = "tool_use"
        else:
            content = [{"type": "text", "text": orjson.dumps(JSON_ANSWER).decode()}]
    elif model in ("split", "endless"):
        content = [{"type": "text", "text": SPLIT_TEXT}]
    elif model.startswith("stop-"):
        stop_reason = model.removeprefix("stop-")
    elif model == "thinking":
        content = [{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}, *content]
    return {
        "id": "msg_fake01",
        "type": "message",
        "role": "assistant",
        "model": f"{model}-20250514",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": USAGE,
    }


def stream_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events Anthropic streams for ``message``, each text and tool input cut into several deltas."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**USAGE, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                ("content_block_start", {"type": "content_block_start", "index": index, "content_block": _TEXT})
            )
            text = block["text"]
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                events.append(("content_block_delta", _text_delta(index, piece)))
        elif block["type"] == "thinking":
            opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
            events.append(
                ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
            )
            for delta in (
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        else:
            opening = {**block, "input": {}}
            events.append(
                ("content_block_start", {"type": "content_block_start", "index": index, "content_block": opening})
            )
            if block["input"]:
                arguments = orjson.dumps(block["input"]).decode()
                # The first partial_json is often empty, as Anthropic sends it.
                for piece in ("", arguments[:5], arguments[5:]):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    events.append(
                        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                    )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    # output_tokens here is the final total, not an increment on message_start's.
    events.append(("message_delta", {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 9}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _text_delta(index: int, text: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


def _sse(name: str, payload: dict[str, Any], newline: bytes = b"\n") -> bytes:
    return b"event: " + name.encode() + newline + b"data: " + orjson.dumps(payload) + newline + newline


def _awkward_pieces(raw: bytes) -> list[bytes]:
    """``raw`` cut inside multi-byte characters, inside a ``data:`` line and between ``\\r`` and ``\\n``."""
    cuts = {
        raw.index("🎉".encode()) + 2,
        raw.index("你".encode()) + 1,
        raw.index("界".encode()) + 2,
        raw.index(b"\r\n") + 1,
        raw.index(b"data: ") + 3,
        raw.index(b"content_block_delta") + 20,
        len(raw) - 1,
    }
    edges = [0, *sorted(cuts), len(raw)]
    return [raw[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


def count_of(request: dict[str, Any]) -> int:
    """What the fake's count_tokens answers for ``request``: not an estimate any formula of the gateway's makes."""
    return 1000 + 7 * len(request["messages"])


async def _count_tokens(data: Any, send: Send) -> None:
    problem = check_request(data, counting=True)
    if problem is not None:
        await _error(send, 400, problem)
        return
    if data["model"].startswith("status-"):
        status = int(data["model"].removeprefix("status-"))
        await _error(send, status, f"fake failure {status}")
        return
    await _json(send, 200, {"input_tokens": count_of(data)})


def check_request(data: Any, *, counting: bool = False, betas: str = "") -> str | None:
    """What Anthropic would refuse in ``data``, as its error message; None when it would take it. ``counting``:
    a count_tokens request, which has no ``max_tokens`` nor ``stream``. ``betas`` (the ``anthropic-beta``
    header): with ``mid-conversation-system-...`` (Claude Code sends it), ``system`` messages may stand
    between the others."""
    if not isinstance(data, dict):
        return "body must be a JSON object"
    allowed = ALLOWED_FIELDS - {"max_tokens", "stream", "stop_sequences", "temperature", "top_p", "top_k", "metadata"}
    unknown = sorted(set(data) - (allowed if counting else ALLOWED_FIELDS))
    if unknown:
        return f"{unknown[0]}: Extra inputs are not permitted"
    if not isinstance(data.get("model"), str):
        return "model: Field required"
    if not counting and (not isinstance(data.get("max_tokens"), int) or data["max_tokens"] < 1):
        return "max_tokens: Field required"
    temperature = data.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: Input should be less than or equal to 1"
    if temperature is not None and data.get("top_p") is not None:
        return "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    for stop in data.get("stop_sequences") or ():
        if not stop.strip():
            return "stop_sequences: each stop sequence must contain non-whitespace"
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        for block in system:
            if block.get("type") != "text" or not block.get("text", "").strip():
                return "system: text content blocks must contain non-whitespace text"
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if "mid-conversation-system" in betas:
        messages = [m for m in messages if not (isinstance(m, dict) and m.get("role") == "system")]
    has_tool_blocks = False
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if i > 0 and role == messages[i - 1]["role"]:
            return "messages: roles must alternate between user and assistant"
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks:
            return f"messages.{i}: all messages must have non-empty content"
        for block in blocks:
            problem = _check_block(block, role)
            if problem is not None:
                return f"messages.{i}.content: {problem}"
            has_tool_blocks = has_tool_blocks or block["type"] in ("tool_use", "tool_result")
        tool_ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
        if tool_ids:
            following = messages[i + 1]["content"] if i + 1 < len(messages) else []
            results = [b.get("tool_use_id") for b in following[: len(tool_ids)] if isinstance(b, dict)]
            if i + 1 < len(messages) and sorted(r for r in results if r) != sorted(tool_ids):
                return (
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(tool_ids)}. Each `tool_use` block must have a corresponding `tool_result` block "
                    "in the next message."
                )
    last = messages[-1]
    if last["role"] == "assistant" and isinstance(last["content"], list):
        final = last["content"][-1]
        if final["type"] == "text" and final["text"] != final["text"].rstrip():
            return "messages: final assistant content cannot end with trailing whitespace"
    if has_tool_blocks and not data.get("tools"):
        return "Requests which include `tool_use` or `tool_result` blocks must define tools."
    for tool in data.get("tools") or ():
        if set(tool) - {"name", "description", "input_schema", "cache_control"}:
            return "tools: Extra inputs are not permitted"
        if tool.get("input_schema", {}).get("type") != "object":
            return "tools.input_schema.type: Input should be 'object'"
    choice = data.get("tool_choice")
    if choice is not None and choice.get("type") not in ("auto", "any", "tool", "none"):
        return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
    return None


def _check_block(block: Any, role: str) -> str | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return None if block.get("text", "").strip() else "text content blocks must contain non-whitespace text"
    if kind in ("image", "document") and role == "user":
        source = block.get("source") or {}
        if source.get("type") == "url":
            return None if str(source.get("url", "")).startswith(("http://", "https://")) else "invalid url"
        if source.get("type") != "base64" or not source.get("data"):
            return "source: invalid image source"
        allowed = IMAGE_TYPES if kind == "image" else {"application/pdf"}
        return None if source.get("media_type") in allowed else f"source.media_type: {source.get('media_type')}"
    if kind == "thinking" and role == "assistant":
        return None if block.get("signature") else "thinking: signature required"
    if kind == "tool_use" and role == "assistant":
        return None if isinstance(block.get("input"), dict) and block.get("id") else "tool_use: invalid"
    if kind == "tool_result" and role == "user":
        return None if block.get("tool_use_id") else "tool_result: tool_use_id required"
    return f"unexpected block type {kind!r} in a {role} message"


async def _error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    error = {"type": ERROR_TYPES.get(status, "api_error"), "message": message}
    await _json(send, status, {"type": "error", "error": error, "request_id": REQUEST_ID.decode()}, headers)


async def _json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps(payload)
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"request-id", REQUEST_ID),
            *(headers or []),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


async def _html(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
