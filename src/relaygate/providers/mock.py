"""The built-in mock provider: a deterministic OpenAI-compatible model served in-process.

It is the OpenAI adapter talking to :class:`MockUpstream`, an in-process upstream that speaks the
OpenAI wire format (JSON bodies and SSE streams). Requests to ``mock/...`` therefore take the same
path through the proxy as any real provider, minus the network: the quickstart and tests use it.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import math
import struct
import time
import zlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anyio
import orjson

from relaygate.providers.openai import OpenAIProvider
from relaygate.settings import ProviderSettings
from relaygate.upstream import UpstreamRequest, UpstreamResponse

__all__ = ["MockProvider", "MockUpstream"]

MOCK_BASE_URL = "http://mock.relaygate.invalid/v1"
MOCK_MODELS = ["echo", "text-embedding", "image"]
DEFAULT_DIMENSIONS = 16


class MockProvider(OpenAIProvider):
    """Accepts any model name; lists a chat, an embedding and an image model."""

    kind = "mock"

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings.model_copy(update={"base_url": MOCK_BASE_URL}), MockUpstream(settings))

    async def list_models(self) -> list[str]:
        return list(self.settings.models or MOCK_MODELS)


class _Response:
    def __init__(
        self,
        status: int,
        body: bytes = b"",
        *,
        chunks: AsyncGenerator[bytes, None] | None = None,
        content_type: str = "",
    ) -> None:
        self.status = status
        self.headers: Mapping[str, str] = {"content-type": content_type or "application/json"}
        self._body = body
        self._chunks = chunks

    async def read(self) -> bytes:
        if self._chunks is None:
            return self._body
        return b"".join([chunk async for chunk in self._chunks])

    async def iter_raw(self) -> AsyncGenerator[bytes, None]:
        if self._chunks is None:
            yield self._body
            return
        async for chunk in self._chunks:
            yield chunk

    async def aclose(self) -> None:
        if self._chunks is not None:
            await self._chunks.aclose()


class MockUpstream:
    """An in-process OpenAI-compatible server."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._chunk_delay = settings.chunk_delay

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        path = request.url.removeprefix(MOCK_BASE_URL)
        if path == "/images/edits":
            fields, image = _form(request)
            return _Response(200, orjson.dumps(_images(fields, image)))
        body: dict[str, Any] = orjson.loads(request.content) if request.content else {}
        if path == "/chat/completions":
            if body.get("stream"):
                return _Response(200, chunks=self._stream(body), content_type="text/event-stream")
            return _Response(200, orjson.dumps(_completion(body)))
        if path == "/embeddings":
            return _Response(200, orjson.dumps(_embeddings(body)))
        if path == "/images/generations":
            return _Response(200, orjson.dumps(_images(body)))
        error = {"error": {"message": f"Unknown mock path {path}", "type": "invalid_request_error"}}
        return _Response(404, orjson.dumps(error))

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def _stream(self, body: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        reply = _Reply(body)
        base = {"id": reply.id, "object": "chat.completion.chunk", "created": reply.created, "model": body["model"]}
        n = _n(body)

        def event(payload: dict[str, Any]) -> bytes:
            return b"data: " + orjson.dumps({**base, **payload}) + b"\n\n"

        for index in range(n):
            yield event(
                {"choices": [{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
            )
        if reply.tool_call is not None:
            for index in range(n):
                call = {"index": 0, **reply.tool_call}
                yield event({"choices": [{"index": index, "delta": {"tool_calls": [call]}, "finish_reason": None}]})
        for piece in reply.pieces:
            if self._chunk_delay:
                await anyio.sleep(self._chunk_delay)
            for index in range(n):
                yield event({"choices": [{"index": index, "delta": {"content": piece}, "finish_reason": None}]})
        for index in range(n):
            yield event({"choices": [{"index": index, "delta": {}, "finish_reason": reply.finish_reason}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            yield event({"choices": [], "usage": reply.usage(n)})
        yield b"data: [DONE]\n\n"


class _Reply:
    def __init__(self, body: dict[str, Any]) -> None:
        self.id = "chatcmpl-mock-" + hashlib.sha256(orjson.dumps(body.get("messages"))).hexdigest()[:24]
        self.created = int(time.time())
        self.prompt_tokens = sum(_word_count(_text(message.get("content"))) for message in body["messages"])
        self.tool_call = _tool_call(body)
        last = body["messages"][-1] if body["messages"] else {}
        if isinstance(last, dict) and last.get("role") == "tool":
            # A tool's result came back (a tool loop): the answer says what it was.
            words = ("relaygate mock reply to the tool result: " + _text(last.get("content"))).split(" ")
        else:
            words = ("relaygate mock reply to: " + _last_user_text(body["messages"])).split(" ")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        self.finish_reason = "tool_calls" if self.tool_call is not None else "stop"
        if self.tool_call is not None:
            words = []
        elif isinstance(limit, int) and 0 < limit < len(words):
            words = words[:limit]
            self.finish_reason = "length"
        self.pieces = [word if i == 0 else " " + word for i, word in enumerate(words)]
        self.content = "".join(self.pieces) if self.tool_call is None else None

    def usage(self, n: int) -> dict[str, Any]:
        completion = len(self.pieces) * n
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    reply = _Reply(body)
    n = _n(body)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_call is not None:
        message["tool_calls"] = [reply.tool_call]
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": body["model"],
        "system_fingerprint": "fp_relaygate_mock",
        "choices": [
            {"index": index, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
            for index in range(n)
        ],
        "usage": reply.usage(n),
    }


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """A call of the named (or first) tool when the request forces one, unless the last message is a tool's
    result (then the reply answers it)."""
    tools = [tool for tool in body.get("tools") or () if isinstance(tool, dict) and tool.get("function")]
    choice = body.get("tool_choice")
    messages = body.get("messages") or []
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return None
    if not tools or not (choice == "required" or isinstance(choice, dict)):
        return None
    name = tools[0]["function"].get("name", "tool")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name", name)
    call_id = "call_mock_" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    # A string, strings, one input as token ids (a list of ints) or several (lists of ints).
    one = isinstance(raw, str) or (isinstance(raw, list) and bool(raw) and all(isinstance(t, int) for t in raw))
    inputs: list[Any] = [raw] if one else list(raw or [])
    dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        vector = _vector(item if isinstance(item, str) else orjson.dumps(item).decode(), dimensions)
        embedding: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(_word_count(item) if isinstance(item, str) else len(item) for item in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _vector(text: str, dimensions: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        values.extend((byte - 127.5) / 127.5 for byte in block)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # Rounded through float32 so that float and base64 answers decode to the same numbers.
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in values]


def _images(body: dict[str, Any], image: bytes = b"") -> dict[str, Any]:
    """Solid-colour PNGs whose colour depends on the prompt (and the image edited)."""
    n = int(body.get("n") or 1)
    png = _png(hashlib.sha256(str(body.get("prompt", "")).encode() + image).digest()[:3])
    encoded = base64.b64encode(png).decode()
    if body.get("response_format") == "url":
        data = [{"url": "data:image/png;base64," + encoded} for _ in range(n)]
    else:
        data = [{"b64_json": encoded} for _ in range(n)]
    answer: dict[str, Any] = {"created": int(time.time()), "data": data, "output_format": "png"}
    if isinstance(body.get("size"), str):
        answer["size"] = body["size"]
    return answer


def _form(request: UpstreamRequest) -> tuple[dict[str, Any], bytes]:
    """The fields and the image file of a multipart ``/images/edits`` request."""
    content_type = request.headers.get("content-type", "")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + (request.content or b"")
    )
    fields: dict[str, Any] = {}
    image = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename():
            image = data
        elif isinstance(name, str):
            fields[name] = data.decode()
    return fields, image


def _png(rgb: bytes, size: int = 8) -> bytes:
    """A small solid-colour PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + rgb * size for _ in range(size))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _n(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and 1 <= n <= 16 else 1


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _word_count(text: str) -> int:
    return len(text.split())
