"""The built-in mock provider: a deterministic OpenAI-compatible model served in-process.

It is the OpenAI adapter talking to :class:`MockUpstream`, an in-process upstream that speaks the
OpenAI wire format (JSON bodies and SSE streams). Requests to ``mock/...`` therefore take the same
path through the proxy as any real provider, minus the network: the quickstart and tests use it.
Its chat model plays an agent (agent.py): structured outputs valid against their schema, tool calls
with arguments valid against the tool's parameters, answers made from tool results.
"""

from __future__ import annotations

from relaygate.providers.mock.upstream import MOCK_BASE_URL, MockUpstream
from relaygate.providers.openai import OpenAIProvider
from relaygate.settings import ProviderSettings

__all__ = ["MOCK_MODELS", "MockProvider", "MockUpstream"]

MOCK_MODELS = ["echo", "text-embedding", "image"]


class MockProvider(OpenAIProvider):
    """Accepts any model name; lists a chat, an embedding and an image model."""

    kind = "mock"

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings.model_copy(update={"base_url": MOCK_BASE_URL}), MockUpstream(settings))

    async def list_models(self) -> list[str]:
        return list(self.settings.models or MOCK_MODELS)
