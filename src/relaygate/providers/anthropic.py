"""Anthropic Messages API behind the OpenAI chat API (being built: issue 4)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from relaygate.context import RequestContext
from relaygate.providers.base import Endpoint, Provider
from relaygate.upstream import UpstreamResponse

__all__ = ["AnthropicProvider"]


class AnthropicProvider(Provider):
    kind = "anthropic"

    async def open(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> UpstreamResponse:
        raise NotImplementedError

    def response_body(self, endpoint: Endpoint, raw: bytes, ctx: RequestContext) -> bytes:
        raise NotImplementedError

    def stream_frames(
        self, response: UpstreamResponse, ctx: RequestContext, *, usage_chunk: bool
    ) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError
