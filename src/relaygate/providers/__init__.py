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
from relaygate.settings import Preset, ProviderSettings, Settings
from relaygate.upstream import AiohttpClient

__all__ = [
    "AnthropicProvider",
    "Endpoint",
    "GeminiProvider",
    "MockProvider",
    "OpenAIProvider",
    "Provider",
    "build_provider",
    "build_providers",
    "preset_provider",
]

MOCK_PROVIDER = "mock"
ADAPTERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
}


def build_providers(settings: Settings) -> dict[str, Provider]:
    """One adapter, with its own pooled client, per configured provider; ``mock`` is always there."""
    providers = {name: build_provider(name, provider) for name, provider in settings.providers.items()}
    if MOCK_PROVIDER not in providers:
        providers[MOCK_PROVIDER] = MockProvider(MOCK_PROVIDER, ProviderSettings(kind="mock"))
    return providers


def build_provider(name: str, settings: ProviderSettings) -> Provider:
    """The adapter of one provider, with its own pooled client."""
    if settings.kind == "mock":
        return MockProvider(name, settings)
    client = AiohttpClient(timeouts=settings.timeouts, max_connections=settings.max_connections, name=name)
    return ADAPTERS[settings.kind](name, settings, client)


def preset_provider(preset: Preset) -> Provider:
    """A provider made from a preset alone, without a key: it serves requests that bring their own
    (see :mod:`relaygate.middleware.byok`)."""
    return build_provider(
        preset.name, ProviderSettings(kind=preset.kind, base_url=preset.base_url, images_api=preset.images_api)
    )
