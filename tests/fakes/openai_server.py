"""A fake OpenAI-compatible server speaking the real wire format, served over real HTTP in tests.

What it does is chosen by the model name the gateway forwards:

- any ordinary name: a JSON completion, or an SSE stream (usage chunk when asked for);
- ``status-<code>``: that status with an OpenAI error body (429 adds ``Retry-After: 7``);
- ``text-status-<code>``: that status with a plain-text body;
- ``sleep-<seconds>``: waits before answering (before the first chunk when streaming);
- ``drip-<seconds>``: streams its first chunk at once, then waits before the rest;
- ``endless``: streams a chunk every 20 ms until the client goes away, and records that it went;
- ``broken``: streams two chunks, then drops the connection mid-body;
- ``split``: one event split across reads inside a UTF-8 character, with CRLF framing;
- ``error-event``: a 200 stream whose second event is ``data: {"error": ...}``;
- ``no-done``: a stream that ends without ``data: [DONE]``;
- ``paced``: the ordinary stream with 10 ms between events, so that each arrives in its own read;
- ``echo`` / ``echo-<n>``: answers with the last user message's text, streamed in pieces of ``n``
  characters (default 5), so that a test chooses both the answer and where chunks split it;
- ``judge``: a guard judge answering ``{"verdict": ...}``: fail when the judged text holds one of
  ``JUDGE_FAILS``; ``judge-garbage`` answers with prose instead of a verdict.

A test can also script a model name's next answers (:meth:`FakeOpenAI.script`), one step per request,
after which the name behaves as above: ``"500"`` (any status, with an OpenAI error body),
``"429:2"`` (a status with ``Retry-After: 2``), ``"hang"`` (answers after 5 s, past any test timeout),
``"error-first"`` (a 200 stream whose first event is an error) or ``"ok"``.

``agent`` plays an agent (tool calls, then an answer; structured outputs) and ``POST /v1/responses`` is the
Responses API itself: see ``tests/fakes/openai_agent.py``.

``POST /v1/moderations`` flags inputs holding one of ``MODERATION_FLAGS`` (category ``violence``).
"""

from __future__ import annotations

import asyncio
import base64
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from tests.fakes.openai_agent import agent_chunks, agent_message, responses_answer, responses_events
from tests.fakes.recording import Seen, read_request, tick_until_disconnect

REPLY = "Hello from the fake upstream"
JUDGE_FAILS = ("idiot", "ignore previous instructions")
MODERATION_FLAGS = ("kill",)
MODELS = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "gpt-image-1"]


@dataclass
class FakeOpenAI:
    requests: list[Seen] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, model: str, *steps: str) -> None:
        """The next answers to requests for ``model``, one step each (see the module docstring)."""
        with self._lock:
            self.scripts[model] = list(steps)

    def models_seen(self, path: str = "/chat/completions") -> list[str]:
        return [r.body.get("model") for r in self.requests if r.path.endswith(path)]

    def _step(self, model: str) -> str | None:
        with self._lock:
            steps = self.scripts.get(model)
            return steps.pop(0) if steps else None

    def last(self, path: str | None = None) -> Seen:
        matching = [r for r in self.requests if path is None or r.path.endswith(path)]
        return matching[-1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen = await read_request(scope, receive, empty={})
        data: dict[str, Any] = seen.body
        self.requests.append(seen)
        path = scope["path"]
        if path == "/v1/models":
            await _json(
                send,
                200,
                {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"} for m in MODELS]},
            )
            return
        model = str(data.get("model", ""))
        step = self._step(model)
        if step == "hang":
            await asyncio.sleep(5)
        elif step == "error-first" and data.get("stream"):
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            overloaded = {"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}}
            await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(overloaded) + b"\n\n"})
            return
        elif step is not None and step != "ok":
            code, _, wait = step.partition(":")
            failure = {"error": {"message": f"scripted failure {code}", "type": "fake_error", "code": f"fake_{code}"}}
            await _json(send, int(code), failure, [(b"retry-after", wait.encode())] if wait else [])
            return
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            extra = [(b"retry-after", b"7")] if status == 429 else []
            error = {
                "error": {
                    "message": f"fake failure {status}",
                    "type": "fake_error",
                    "param": None,
                    "code": f"fake_{status}",
                }
            }
            await _json(send, status, error, extra)
            return
        if model.startswith("text-status-"):
            status = int(model.removeprefix("text-status-"))
            await _raw(send, status, b"upstream exploded", b"text/plain")
            return
        if model.startswith("sleep-"):
            await asyncio.sleep(float(model.removeprefix("sleep-")))
        if path == "/v1/moderations":
            await _json(send, 200, _moderation(data))
            return
        if path == "/v1/responses":
            if model == "html":
                await _raw(send, 200, b"<html><body>Gateway Timeout</body></html>", b"text/html")
            elif data.get("stream"):
                await send(
                    {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
                )
                for name, payload in responses_events(data):
                    frame = b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await _json(send, 200, responses_answer(data))
            return
        if path == "/v1/chat/completions" and model.startswith("agent"):
            if data.get("stream"):
                await self._agent_stream(data, send)
            else:
                message, finish = agent_message(data)
                body = _completion(data)
                body["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
                await _json(send, 200, body)
            return
        if path == "/v1/chat/completions" and model.startswith(("echo", "judge")):
            content = _judge(data) if model.startswith("judge") else _last_user_text(data)
            if data.get("stream"):
                await self._stream(data, receive, send, content)
            else:
                await _json(send, 200, _completion(data, content))
            return
        if path == "/v1/chat/completions":
            if data.get("stream"):
                await self._stream(data, receive, send)
            else:
                await _json(send, 200, _completion(data))
        elif path == "/v1/embeddings":
            await _json(send, 200, _embeddings(data))
        elif path == "/v1/images/generations":
            await _json(
                send, 200, {"created": int(time.time()), "data": [{"b64_json": "aW1hZ2U="}] * (data.get("n") or 1)}
            )
        else:
            await _json(send, 404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    async def _agent_stream(self, data: dict[str, Any], send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        base = {"id": "chatcmpl-agent", "object": "chat.completion.chunk", "created": 1, "model": data["model"]}
        frames = [{**base, "choices": [{"index": 0, **delta}]} for delta in agent_chunks(data)]
        if (data.get("stream_options") or {}).get("include_usage"):
            frames.append({**base, "choices": [], "usage": _usage()})
        for payload in frames:
            await send(
                {"type": "http.response.body", "body": b"data: " + orjson.dumps(payload) + b"\n\n", "more_body": True}
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def _stream(self, data: dict[str, Any], receive: Receive, send: Send, content: str | None = None) -> None:
        model = data["model"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        async def event(payload: dict[str, Any] | bytes) -> None:
            raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
            await send({"type": "http.response.body", "body": b"data: " + raw + b"\n\n", "more_body": True})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if model == "endless":
            await tick_until_disconnect(receive, lambda _: event(chunk({"content": "tick "})), self.disconnected)
            return
        if model == "broken":
            await event(chunk({"role": "assistant", "content": ""}))
            await event(chunk({"content": "partial"}))
            raise RuntimeError("the fake upstream drops the connection")
        if model == "split":
            raw = b"data: " + orjson.dumps(chunk({"content": "héllo wörld 🎉"})) + b"\r\n\r\n"
            cut = raw.index("🎉".encode()) + 2  # inside the 4-byte emoji
            for piece in (raw[:7], raw[7:cut], raw[cut:-1], raw[-1:]):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b"data: [DONE]\r\n\r\n", "more_body": False})
            return
        if model == "error-event":
            await event(chunk({"role": "assistant", "content": ""}))
            await event({"error": {"message": "overloaded mid-stream", "type": "server_error", "code": "overloaded"}})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await event(chunk({"role": "assistant", "content": ""}))
        if model.startswith("drip-"):
            await asyncio.sleep(float(model.removeprefix("drip-")))
        if content is not None:
            suffix = model.partition("-")[2]
            size = int(suffix) if suffix.isdigit() else 5
            for at in range(0, len(content), size):
                await event(chunk({"content": content[at : at + size]}))
        else:
            for word in REPLY.split(" "):
                if model == "paced":
                    await asyncio.sleep(0.01)
                await event(chunk({"content": word + " "}))
        await event(chunk({}, "stop"))
        if (data.get("stream_options") or {}).get("include_usage"):
            await event({**chunk({}), "choices": [], "usage": _usage()})
        if model != "no-done":
            await event(b"[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 11,
        "completion_tokens": 5,
        "total_tokens": 16,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _completion(data: dict[str, Any], content: str = REPLY) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": data["model"],
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for i in range(data.get("n") or 1)
        ],
        "usage": _usage(),
    }


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _last_user_text(data: dict[str, Any]) -> str:
    users = [message for message in data.get("messages") or () if message.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


def _judge(data: dict[str, Any]) -> str:
    if data["model"] == "judge-garbage":
        return "I think the text is probably fine."
    judged = _last_user_text(data).partition("<text>")[2].lower()
    failed = any(word in judged for word in JUDGE_FAILS)
    return orjson.dumps({"verdict": "fail" if failed else "pass", "reason": "fake judgement"}).decode()


def _moderation(data: dict[str, Any]) -> dict[str, Any]:
    inputs = data["input"] if isinstance(data["input"], list) else [data["input"]]
    results = []
    for text in inputs:
        flagged = any(word in str(text).lower() for word in MODERATION_FLAGS)
        results.append(
            {
                "flagged": flagged,
                "categories": {"violence": flagged, "harassment": False},
                "category_scores": {"violence": 0.97 if flagged else 0.01, "harassment": 0.02},
            }
        )
    return {"id": "modr-fake", "model": data.get("model", ""), "results": results}


def _embeddings(data: dict[str, Any]) -> dict[str, Any]:
    inputs = data["input"] if isinstance(data["input"], list) else [data["input"]]
    vectors = [[0.5, -0.25, float(i)] for i in range(len(inputs))]
    if data.get("encoding_format") == "base64":
        encoded: list[Any] = [base64.b64encode(struct.pack("<3f", *v)).decode() for v in vectors]
    else:
        encoded = vectors
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(encoded)],
        "model": data["model"],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }


async def _json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _raw(send, status, orjson.dumps(payload), b"application/json", headers)


async def _raw(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
