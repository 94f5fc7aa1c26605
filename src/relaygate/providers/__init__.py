"""Provider adapters and the registry built from settings.

The adapters are :mod:`.openai` (pass-through; :mod:`.mock` builds on it), :mod:`.anthropic` and
:mod:`.gemini`. What they share lives in one place each: :mod:`.base` (the :class:`Provider` interface
and its HTTP plumbing), :mod:`.errors` (upstream errors in OpenAI's shape), :mod:`.streaming` (reading
SSE streams, writing chunks), :mod:`.listing` (the cached model list), :mod:`.params` (checks of the
OpenAI request parameters that adapters translate) and :mod:`.media` (image URLs and ``data:`` URLs).
"""

from __future__ import annotations

from relaygate.providers.anthropic import AnthropicProvider
from relaygate.providers.base import Endpoint, Provider
from relaygate.providers.gemini import GeminiProvider
from relaygate.providers.mock import MockProvider
from relaygate.providers.openai import OpenAIProvider
from relaygate.settings import ProviderSettings, Settings
from relaygate.upstream import AiohttpClient

__all__ = [
    "AnthropicProvider",
    "Endpoint",
    "GeminiProvider",
    "MockProvider",
    "OpenAIProvider",
    "Provider",
    "build_providers",
]

MOCK_PROVIDER = "mock"
ADAPTERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}


def build_providers(settings: Settings) -> dict[str, Provider]:
    """One adapter, with its own pooled client, per configured provider; ``mock`` is always there."""
    providers: dict[str, Provider] = {}
    for name, provider in settings.providers.items():
        if provider.kind == "mock":
            providers[name] = MockProvider(name, provider)
        else:
            client = AiohttpClient(timeouts=provider.timeouts, max_connections=provider.max_connections, name=name)
            providers[name] = ADAPTERS[provider.kind](name, provider, client)
    if MOCK_PROVIDER not in providers:
        providers[MOCK_PROVIDER] = MockProvider(MOCK_PROVIDER, ProviderSettings(kind="mock"))
    return providers
