"""The mock's in-process upstream: the OpenAI wire format (JSON bodies and SSE streams), no network."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anyio
import orjson

from relaygate.providers.mock.chat import Reply, completion
from relaygate.providers.mock.media import embeddings, form, images
from relaygate.settings import ProviderSettings
from relaygate.upstream import UpstreamRequest, UpstreamResponse

__all__ = ["MOCK_BASE_URL", "MockUpstream"]

MOCK_BASE_URL = "http://mock.relaygate.invalid/v1"


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
    """An in-process OpenAI-compatible server. ``chunk_delay`` (seconds) paces its streams: it comes before
    every streamed piece of content or of a tool call's arguments."""

    def __init__(self, settings: ProviderSettings) -> None:
        self._chunk_delay = settings.chunk_delay

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        path = request.url.removeprefix(MOCK_BASE_URL)
        if path == "/images/edits":
            fields, image = form(request)
            return _Response(200, orjson.dumps(images(fields, image)))
        body: dict[str, Any] = orjson.loads(request.content) if request.content else {}
        if path == "/chat/completions":
            if body.get("stream"):
                return _Response(200, chunks=self._stream(body), content_type="text/event-stream")
            return _Response(200, orjson.dumps(completion(body)))
        if path == "/embeddings":
            return _Response(200, orjson.dumps(embeddings(body)))
        if path == "/images/generations":
            return _Response(200, orjson.dumps(images(body)))
        error = {"error": {"message": f"Unknown mock path {path}", "type": "invalid_request_error"}}
        return _Response(404, orjson.dumps(error))

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def _stream(self, body: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        reply = Reply(body)
        base = {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": "fp_relaygate_mock",
        }

        def event(payload: dict[str, Any]) -> bytes:
            return b"data: " + orjson.dumps({**base, **payload}) + b"\n\n"

        for paced, delta in reply.deltas():
            if paced and self._chunk_delay:
                await anyio.sleep(self._chunk_delay)
            yield b"".join(
                event({"choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}]})
                for index in range(reply.n)
            )
        for index in range(reply.n):
            yield event(
                {"choices": [{"index": index, "delta": {}, "logprobs": None, "finish_reason": reply.finish_reason}]}
            )
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            yield event({"choices": [], "usage": reply.usage()})
        yield b"data: [DONE]\n\n"
