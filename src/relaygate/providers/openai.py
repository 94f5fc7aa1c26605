"""Pass-through to any OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio, OpenRouter, ...).

Bodies go out as they came, with the provider prefix taken off the model and the gateway's own fields
removed. Streams always ask for ``stream_options.include_usage`` so that usage is known; the usage
chunk is dropped again when the client did not ask for it. Image requests go the provider's way
(OpenAI's Images API, Together's, or chat completions with image output: :mod:`.images`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, ClassVar

import orjson

from relaygate.context import RequestContext
from relaygate.providers.base import Endpoint, Provider, json_answer
from relaygate.providers.errors import stream_error, upstream_error
from relaygate.providers.images import images_answer, open_images
from relaygate.providers.listing import data_ids
from relaygate.providers.streaming import StreamMapper, relay
from relaygate.requests import GATEWAY_FIELDS
from relaygate.sse import SSEEvent
from relaygate.upstream import UpstreamResponse

__all__ = ["OpenAIProvider", "stream_error", "upstream_error"]

PATHS: dict[Endpoint, str] = {
    "chat": "/chat/completions",
    "embeddings": "/embeddings",
    "images": "/images/generations",
}


class OpenAIProvider(Provider):
    kind = "openai"

    def upstream_body(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        out = {key: value for key, value in body.items() if key not in GATEWAY_FIELDS}
        out["model"] = model
        if stream and self.settings.stream_usage:
            options = out.get("stream_options")
            out["stream_options"] = (
                {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
            )
        return out

    async def open(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> UpstreamResponse:
        if endpoint == "images":
            return await open_images(self, body, model)
        payload = self.upstream_body(endpoint, body, model, stream=stream)
        return await self.post(self.base_url + PATHS[endpoint], payload)

    def response_body(self, endpoint: Endpoint, raw: bytes, ctx: RequestContext) -> bytes:
        body = json_answer(raw, self.name)
        if endpoint == "images" and (translated := images_answer(self, body)) is not None:
            ctx.record_response(translated)
            return orjson.dumps(translated)
        return orjson.dumps(body) if ctx.record_response(body) else raw

    def stream_frames(
        self, response: UpstreamResponse, ctx: RequestContext, *, usage_chunk: bool
    ) -> AsyncGenerator[bytes, None]:
        return relay(response, _PassThrough(self.name, ctx, usage_chunk=usage_chunk))

    async def fetch_models(self) -> list[str]:
        return data_ids(await self.get_json(self.base_url + "/models"))


class _PassThrough(StreamMapper):
    """The upstream's own chunks, forwarded as they came."""

    ends_on_done: ClassVar[bool] = True

    def on_event(self, payload: dict[str, Any], event: SSEEvent) -> tuple[bytes, bool]:
        if not self.usage_chunk and not payload.get("choices") and payload.get("usage"):
            self.ctx.record_chunk(payload)
            return b"", False  # the usage chunk the gateway asked for on its own behalf
        return self.chunk_frame(payload, event.data), False
