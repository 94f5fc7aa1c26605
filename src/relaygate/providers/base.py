"""What the proxy needs from a provider adapter.

An adapter maps the OpenAI request to the provider's (URL, headers, body), the provider's answer back
to OpenAI bytes, its stream to OpenAI ``data:`` frames, and its errors to :class:`UpstreamError`.
The proxy owns everything ASGI: reading, sending, time limits, disconnects and error framing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from typing import Any, Literal

from relaygate.context import RequestContext
from relaygate.settings import ProviderSettings
from relaygate.upstream import UpstreamClient, UpstreamResponse

__all__ = ["Endpoint", "Provider"]

Endpoint = Literal["chat", "embeddings", "images"]


class Provider(ABC):
    kind: str = ""

    def __init__(self, name: str, settings: ProviderSettings, client: UpstreamClient) -> None:
        self.name = name
        self.settings = settings
        self.client = client
        self._models = frozenset(settings.models) if settings.models is not None else None

    def accepts(self, model: str) -> bool:
        """Whether ``model`` (without the provider prefix) may be routed here."""
        return self._models is None or model in self._models

    async def list_models(self) -> list[str]:
        return list(self.settings.models or ())

    @property
    def first_chunk_timeout(self) -> float:
        return self.settings.timeouts.first_chunk

    @abstractmethod
    async def open(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> UpstreamResponse:
        """Send the request; return the response once its status is a success, else raise its error."""

    @abstractmethod
    def response_body(self, endpoint: Endpoint, raw: bytes, ctx: RequestContext) -> bytes:
        """The OpenAI body to send for a whole (non-streamed) upstream answer; records it on ``ctx``."""

    @abstractmethod
    def stream_frames(
        self, response: UpstreamResponse, ctx: RequestContext, *, usage_chunk: bool
    ) -> AsyncGenerator[bytes, None]:
        """OpenAI SSE frames for an upstream stream, ending with ``data: [DONE]`` or an error frame."""

    async def start(self) -> None:
        await self.client.start()

    async def aclose(self) -> None:
        await self.client.aclose()
