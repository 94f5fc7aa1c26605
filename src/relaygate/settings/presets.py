"""Provider presets: the providers relaygate knows by name, with their kind, base URL and key variable.

A preset makes a provider usable with nothing but its key: ``TOGETHER_API_KEY`` in the environment adds
``together`` (:mod:`relaygate.settings.loading`), a config entry named after a preset may leave out
``kind`` and ``base_url`` (and ``api_key``, when the variable is set), and a request that brings its own
provider key (``LB-LLM-Key``, see :mod:`relaygate.middleware.byok`) may name a preset that is not
configured at all. A config entry overrides any part of a preset.

:func:`known_provider` is the one answer to "does this model prefix name a provider": a configured one,
the built-in mock, or a preset (by its name or an alias: ``google`` is ``gemini``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ALIASES",
    "PRESETS",
    "ImagesApi",
    "Preset",
    "configured_name",
    "known_provider",
    "preset",
]

# How an OpenAI-compatible provider makes images: OpenAI's Images API (/images/generations, /images/edits),
# Together's (/images/generations with width, height and steps), or chat completions answering with
# images (OpenRouter: modalities ["image", "text"], the images in message.images).
ImagesApi = Literal["openai", "together", "chat"]


@dataclass(frozen=True, slots=True)
class Preset:
    """A provider relaygate knows: ``kind`` and ``base_url`` as a config entry would give them, and the
    environment variables that may hold its key (the first one set is used)."""

    name: str
    kind: Literal["openai", "anthropic", "gemini"]
    base_url: str
    key_variables: tuple[str, ...]
    images_api: ImagesApi | None = None


PRESETS: Mapping[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("openai", "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",)),
        Preset("anthropic", "anthropic", "https://api.anthropic.com/v1", ("ANTHROPIC_API_KEY",)),
        Preset(
            "gemini", "gemini", "https://generativelanguage.googleapis.com/v1beta", ("GEMINI_API_KEY", "GOOGLE_API_KEY")
        ),
        Preset("together", "openai", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",), images_api="together"),
        Preset("openrouter", "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",), images_api="chat"),
        Preset("groq", "openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",)),
        Preset("mistral", "openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",)),
        Preset("deepseek", "openai", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",)),
        Preset("xai", "openai", "https://api.x.ai/v1", ("XAI_API_KEY",)),
        Preset("fireworks", "openai", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",)),
    )
}
# Other names clients use for a preset (Langbase and Vercel name Gemini "google").
ALIASES: Mapping[str, str] = {"google": "gemini", "together-ai": "together", "togetherai": "together", "x-ai": "xai"}


def preset(name: str) -> Preset | None:
    """The preset called ``name`` or one of its aliases; ``None`` for any other name."""
    return PRESETS.get(ALIASES.get(name, name))


def configured_name(name: str, configured: Collection[str]) -> str | None:
    """The configured provider a model prefix stands for: itself, or the preset it is an alias of when that
    is configured under the preset's name (``google`` -> ``gemini``); ``None`` when neither is."""
    if name in configured:
        return name
    alias = ALIASES.get(name)
    return alias if alias is not None and alias in configured else None


def known_provider(name: str, configured: Collection[str]) -> bool:
    """Whether a model prefix names a provider: a configured one, the built-in mock, or a preset (by name or
    alias), which serves requests that bring their own key and is added by its key variable."""
    return name == "mock" or configured_name(name, configured) is not None or preset(name) is not None
