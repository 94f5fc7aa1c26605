"""A fake Gemini API (``v1beta``) speaking Google's wire format, served over real HTTP in tests.

Routes: ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` (events
``data: {...}\\r\\n\\r\\n``, no terminator), ``:batchEmbedContents`` (at most 100 requests, as Google) and
``GET /v1beta/models`` (two pages). A missing or wrong ``x-goog-api-key`` gets Google's 400
``API_KEY_INVALID``. Every request is recorded, so tests can look at the body the gateway sent.

What a chat does is chosen by the model name:

- any ordinary name: text (:data:`REPLY`, streamed in :data:`PIECES`) with cumulative usage, one
  candidate per ``candidateCount``, and ``logprobsResult`` when ``responseLogprobs`` is asked;
- ``tools``: two parallel ``functionCall`` parts (streamed one per event) and ``STOP``;
- ``thinking-tools``: a Gemini 3 call carrying :data:`SIGNATURE`; a replayed call without it is a 400;
- ``blocked``: ``promptFeedback.blockReason`` and no candidates; ``safety``: ``SAFETY`` and no content;
- ``max``: ``MAX_TOKENS``; ``json``: a JSON text;
- ``status-<code>``: Google's error body for that status (429 carries ``RetryInfo`` of 30 s);
- ``error-event``: a text event, then ``data: {"error": ...}`` on the 200 stream;
- ``split``: events cut inside UTF-8 characters and between ``\\r`` and ``\\n``, two events in one read;
- ``paced``: 20 ms between events; ``endless``: an event every 20 ms until the client goes away;
- ``image``/``no-image``/``image-safety`` with ``responseModalities: ["IMAGE"]``: images, text only, refused.
- ``not-json``: a 200 whose body is an HTML page (``generateContent``), as a misbehaving proxy might send.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

from tests.fakes.recording import Seen, read_request, tick_until_disconnect

API_KEY = "gemini-upstream-secret"
PIECES = ["Hello", " from Gemini ", "🎉 你好"]
REPLY = "".join(PIECES)
JSON_REPLY = '{"answer": 42}'
SIGNATURE = "c2lnbmF0dXJlLW9mLWEtdGhvdWdodA+/="
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake-image").decode()
MODELS_PAGE_1 = ["gemini-2.5-flash", "gemini-embedding-001"]
MODELS_PAGE_2 = ["gemini-2.5-flash-image"]
FULL_SIZE = 3072
STATUSES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def usage(candidates: int) -> dict[str, Any]:
    """Cumulative usage after ``candidates`` output tokens, with thoughts, tool-use prompt and cache."""
    return {
        "promptTokenCount": 12,
        "candidatesTokenCount": candidates,
        "thoughtsTokenCount": 7,
        "toolUsePromptTokenCount": 2,
        "cachedContentTokenCount": 4,
        "totalTokenCount": 12 + candidates + 7 + 2,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
    }


def fake_vector(text: str, dimensions: int) -> list[float]:
    """The (not normalised) vector the fake gives ``text``; the same text always gets the same vector."""
    seed = hashlib.sha256(text.encode()).digest()
    return [(seed[i % len(seed)] - 100 + i % 7) / 50 for i in range(dimensions)]


@dataclass
class FakeGemini:
    requests: list[Seen] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    # The API keys it accepts (a caller's own, besides the configured one, in tests of LB-LLM-Key).
    keys: set[str] = field(default_factory=lambda: {API_KEY})

    def last(self, suffix: str = "") -> Seen:
        return [r for r in self.requests if r.path.endswith(suffix)][-1]

    def calls(self, suffix: str) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen = await read_request(scope, receive)
        headers, query, body, path = seen.headers, seen.query, seen.body, seen.path
        self.requests.append(seen)
        if headers.get("x-goog-api-key") not in self.keys:
            await _error(
                send,
                400,
                "API key not valid. Please pass a valid API key.",
                [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            )
            return
        if path == "/v1beta/models" and scope["method"] == "GET":
            if query.get("pageToken") == ["page-2"]:
                await _json(send, 200, {"models": [{"name": f"models/{m}"} for m in MODELS_PAGE_2]})
            else:
                page = {"models": [{"name": f"models/{m}"} for m in MODELS_PAGE_1], "nextPageToken": "page-2"}
                await _json(send, 200, page)
            return
        model, _, method = path.removeprefix("/v1beta/models/").partition(":")
        if not path.startswith("/v1beta/models/") or scope["method"] != "POST" or not isinstance(body, dict):
            await _error(send, 404, f"Not found: {scope['method']} {path}")
            return
        if model.startswith("status-"):
            await _status(send, int(model.removeprefix("status-")))
        elif method == "batchEmbedContents":
            await self._embed(send, model, body)
        elif method == "generateContent":
            if "IMAGE" in ((body.get("generationConfig") or {}).get("responseModalities") or ()):
                await self._image(send, model, body)
            else:
                await self._generate(send, model, body)
        elif method == "streamGenerateContent" and query.get("alt") == ["sse"]:
            await self._stream(send, receive, model, body)
        else:
            await _error(send, 404, f"Method {method} not found.")

    async def _generate(self, send: Send, model: str, body: dict[str, Any]) -> None:
        if model == "thinking-tools" and not _signed_history(body):
            await _error(send, 400, "Function call is missing a thought_signature in functionCall parts.")
            return
        if model == "blocked":
            await _json(send, 200, _blocked())
            return
        if model == "not-json":
            page = b"<html><body>Service temporarily unavailable</body></html>"
            headers = [(b"content-type", b"text/html"), (b"content-length", str(len(page)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": page})
            return
        config = body.get("generationConfig") or {}
        count = config.get("candidateCount") or 1
        candidates = [_candidate(model, i, config) for i in range(count)]
        await _json(send, 200, {**_envelope(), "candidates": candidates, "usageMetadata": usage(5)})

    async def _stream(self, send: Send, receive: Receive, model: str, body: dict[str, Any]) -> None:
        if model == "thinking-tools" and not _signed_history(body):
            await _error(send, 400, "Function call is missing a thought_signature in functionCall parts.")
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        async def event(payload: dict[str, Any]) -> None:
            await send({"type": "http.response.body", "body": _event(payload), "more_body": True})

        def chunk(parts: list[dict[str, Any]], tokens: int, finish: str | None = None) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            return {**_envelope(), "candidates": [candidate], "usageMetadata": usage(tokens)}

        if model == "blocked":
            await event(_blocked())
        elif model == "safety":
            await event({**_envelope(), "candidates": [{"finishReason": "SAFETY", "index": 0}]})
        elif model in ("tools", "thinking-tools"):
            calls = _calls(model)
            await event(chunk(calls[:1], 3))
            await event(chunk(calls[1:], 6, "STOP"))
        elif model == "error-event":
            await event(chunk([{"text": "Hel"}], 1))
            await event({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
        elif model == "split":
            first, second, third = (_event(chunk([{"text": piece}], n + 1)) for n, piece in enumerate(PIECES))
            emoji = third.index("🎉".encode()) + 2  # inside the 4-byte emoji
            cjk = third.index("你".encode()) + 1  # inside a 3-byte CJK character
            # The last read of the first event holds only its final "\n"; the next holds two events.
            reads = (first[:9], first[9:-1], first[-1:] + second + third[:emoji], third[emoji:cjk], third[cjk:])
            for read in reads:
                await send({"type": "http.response.body", "body": read, "more_body": True})
                await asyncio.sleep(0.01)
        elif model == "endless":
            await tick_until_disconnect(receive, lambda n: event(chunk([{"text": "tick "}], n)), self.disconnected)
            return
        else:
            config = body.get("generationConfig") or {}
            pieces = [JSON_REPLY[:5], JSON_REPLY[5:]] if model == "json" else PIECES
            finish = "MAX_TOKENS" if model == "max" else "STOP"
            for n, piece in enumerate(pieces):
                if model == "paced":
                    await asyncio.sleep(0.02)
                last = n == len(pieces) - 1
                payload = chunk([{"text": piece}], n + 1, finish if last else None)
                if config.get("responseLogprobs"):
                    payload["candidates"][0]["logprobsResult"] = _logprobs([piece])
                await event(payload)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _embed(self, send: Send, model: str, body: dict[str, Any]) -> None:
        requests = body.get("requests") or []
        if len(requests) > 100:
            await _error(send, 400, "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch")
            return
        embeddings = []
        for request in requests:
            if request.get("model") != f"models/{model}":
                await _error(send, 400, f"Model {request.get('model')} does not match the URL.")
                return
            dimensions = request.get("outputDimensionality") or FULL_SIZE
            values = fake_vector(request["content"]["parts"][0]["text"], dimensions)
            if dimensions == FULL_SIZE:  # as Google: only full-size vectors come normalised
                norm = math.sqrt(sum(v * v for v in values))
                values = [v / norm for v in values]
            embeddings.append({"values": values})
        await _json(send, 200, {"embeddings": embeddings})

    async def _image(self, send: Send, model: str, body: dict[str, Any]) -> None:
        count = (body.get("generationConfig") or {}).get("candidateCount") or 1
        if model == "no-image":
            candidate = {"content": {"role": "model", "parts": [{"text": "I can only describe it."}]}}
            candidates = [{**candidate, "finishReason": "STOP", "index": 0}]
        elif model == "image-safety":
            candidates = [{"finishReason": "IMAGE_SAFETY", "index": 0}]
        else:
            parts = [
                {"text": "A draft", "thought": True},
                {"inlineData": {"mimeType": "image/png", "data": PNG + "dGhvdWdodA=="}, "thought": True},
                {"text": "Here it is."},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
            ]
            candidates = [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": i} for i in range(count)
            ]
        meta = {
            "promptTokenCount": 9,
            "candidatesTokenCount": 1290 * count,
            "totalTokenCount": 9 + 1290 * count,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}],
        }
        await _json(send, 200, {**_envelope(), "candidates": candidates, "usageMetadata": meta})


def _envelope() -> dict[str, Any]:
    return {"modelVersion": "gemini-2.5-flash", "responseId": "resp-fake-1"}


def _blocked() -> dict[str, Any]:
    return {
        **_envelope(),
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
    }


def _calls(model: str) -> list[dict[str, Any]]:
    first: dict[str, Any] = {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "°C"}}}
    if model == "thinking-tools":
        first["thoughtSignature"] = SIGNATURE  # Gemini 3 signs the first call of a turn only
    return [first, {"functionCall": {"name": "get_time", "args": {}}}]


def _candidate(model: str, index: int, config: dict[str, Any]) -> dict[str, Any]:
    if model == "safety":
        return {"finishReason": "SAFETY", "index": index}
    if model in ("tools", "thinking-tools"):
        return {"content": {"role": "model", "parts": _calls(model)}, "finishReason": "STOP", "index": index}
    text = JSON_REPLY if model == "json" else REPLY
    parts = [{"text": "Let me think.", "thought": True}, {"text": text}]
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": parts},
        "finishReason": "MAX_TOKENS" if model == "max" else "STOP",
        "index": index,
    }
    if config.get("responseLogprobs"):
        candidate["logprobsResult"] = _logprobs(PIECES)
    return candidate


def _logprobs(tokens: list[str]) -> dict[str, Any]:
    return {
        "chosenCandidates": [{"token": t, "logProbability": -0.25} for t in tokens],
        "topCandidates": [
            {"candidates": [{"token": t, "logProbability": -0.25}, {"token": "x", "logProbability": -3.0}]}
            for t in tokens
        ],
    }


def _signed_history(body: dict[str, Any]) -> bool:
    """Whether every model turn that calls functions carries the signature on its first call."""
    for content in body.get("contents") or ():
        calls = [p for p in content.get("parts") or () if "functionCall" in p]
        if content.get("role") == "model" and calls and calls[0].get("thoughtSignature") != SIGNATURE:
            return False
    return True


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"


async def _status(send: Send, status: int) -> None:
    details: list[dict[str, Any]] = []
    if status == 429:
        details = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "PerMinute"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"},
        ]
    await _error(send, status, f"fake Gemini failure {status}", details)


async def _error(send: Send, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
    error: dict[str, Any] = {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    await _json(send, status, {"error": error})


async def _json(send: Send, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
