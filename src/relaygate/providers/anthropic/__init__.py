"""Anthropic's Messages API (``POST {base_url}/messages``) behind the OpenAI chat API.

Requests go out with ``x-api-key`` and ``anthropic-version: 2023-06-01`` (the config's ``headers`` may
override either). Anthropic serves chat only: embeddings and images routed here are a 400
``unsupported_endpoint``. The mapping follows ``reference/providers.md`` section 1; its decisions are
documented where they are made:

- :mod:`.conversation`: messages to ``system`` blocks and alternating turns; images and files.
- :mod:`.request`: parameters, tools, ``tool_choice`` and ``response_format`` (``json_object`` is
  emulated with a forced tool).
- :mod:`.responses`: a whole answer as a ``chat.completion``; finish reasons and usage.
- :mod:`.stream`: the event stream as ``chat.completion.chunk`` frames.
- :mod:`.errors`: Anthropic's errors, answered or streamed, in OpenAI's shape.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson

from relaygate.context import RequestContext
from relaygate.errors import InvalidRequestError, UpstreamError
from relaygate.providers.anthropic.errors import anthropic_error
from relaygate.providers.anthropic.request import messages_request
from relaygate.providers.anthropic.responses import chat_completion, json_object_mode, openai_usage
from relaygate.providers.anthropic.stream import AnthropicStream
from relaygate.providers.base import Endpoint, Provider, json_answer
from relaygate.providers.listing import data_ids
from relaygate.providers.streaming import relay
from relaygate.upstream import UpstreamResponse

__all__ = ["AnthropicProvider", "anthropic_error", "chat_completion", "messages_request", "openai_usage"]

ANTHROPIC_VERSION = "2023-06-01"
ENDPOINT_NAMES: dict[Endpoint, str] = {"chat": "chat completions", "embeddings": "embeddings", "images": "images"}


class AnthropicProvider(Provider):
    kind = "anthropic"

    def credential_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def upstream_headers(self) -> dict[str, str]:
        return {"anthropic-version": ANTHROPIC_VERSION, **super().upstream_headers()}

    def error_for(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return anthropic_error(self.name, status, headers, raw)

    async def open(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> UpstreamResponse:
        if endpoint != "chat":
            raise InvalidRequestError(
                f"Provider '{self.name}' (Anthropic) does not serve {ENDPOINT_NAMES[endpoint]}; "
                "route this request to a provider that does.",
                param="model",
                code="unsupported_endpoint",
            )
        payload = messages_request(body, model, stream=stream, default_max_tokens=self.settings.default_max_tokens)
        return await self.post(self.base_url + "/messages", payload)

    def response_body(self, endpoint: Endpoint, raw: bytes, ctx: RequestContext) -> bytes:
        message = json_answer(raw, self.name)
        completion = chat_completion(message, created=int(time.time()), json_mode=json_object_mode(ctx.body))
        ctx.record_response(completion)
        return orjson.dumps(completion)

    def stream_frames(
        self, response: UpstreamResponse, ctx: RequestContext, *, usage_chunk: bool
    ) -> AsyncGenerator[bytes, None]:
        mapper = AnthropicStream(self.name, ctx, usage_chunk=usage_chunk, json_mode=json_object_mode(ctx.body))
        return relay(response, mapper)

    async def fetch_models(self) -> list[str]:
        return data_ids(await self.get_json(self.base_url + "/models?limit=1000"))
