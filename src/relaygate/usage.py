"""The token usage of a call, as the providers report it, read only where its figures are sane: a count
that is negative, fractional, not a number or beyond any real call is unknown, never stored or priced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_COUNT", "Usage", "sane_count"]


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    # Prompt tokens written to a provider's cache (Anthropic bills them above plain input).
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # Image tokens among the prompt (an image to edit) and the output (generated images), where the provider
    # tells them apart: gpt-image-1 and Gemini bill them at rates of their own.
    input_image_tokens: int = 0
    output_image_tokens: int = 0

    def plus(self, other: Usage | None) -> Usage:
        """This usage and ``other`` summed."""
        if other is None:
            return Usage(**{name: getattr(self, name) for name in self.__slots__})
        return Usage(**{name: getattr(self, name) + getattr(other, name) for name in self.__slots__})

    @classmethod
    def checked(cls, usage: dict[str, Any]) -> Usage | None:
        """:meth:`from_openai`, or ``None`` (usage unknown) when a figure is not a count: negative, fractional,
        not a number or beyond ten billion. Such figures would poison the ledger and the budgets; the call settles
        as one whose provider reported no usage."""
        figures = (usage, *(_details(usage, *names) for names in DETAILS))
        if not all(sane_count(value) for each in figures for key, value in each.items() if key in COUNTS):
            return None
        return cls.from_openai(usage)

    @classmethod
    def from_openai(cls, usage: dict[str, Any]) -> Usage:
        """Chat Completions' usage, or the Images API's (``input_tokens``, ``output_tokens`` and their details)."""
        prompt = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        completion = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
        prompt_details = _details(usage, "prompt_tokens_details", "input_tokens_details")
        completion_details = _details(usage, "completion_tokens_details", "output_tokens_details")
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=int(usage.get("total_tokens") or prompt + completion),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
            cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
            input_image_tokens=_count(prompt_details.get("image_tokens")),
            output_image_tokens=_count(completion_details.get("image_tokens")),
        )


# The figures of a usage object that are token counts; the largest a ledger or a budget takes as one.
COUNTS = frozenset(
    {
        "prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens",
        "cache_creation_input_tokens", "cached_tokens", "reasoning_tokens", "image_tokens", "text_tokens",
        "audio_tokens",
    }
)  # fmt: skip
# Ten billion tokens in one call: far beyond any model's window, and small enough that its cost in nano-dollars at
# any real price (up to $100,000 per 1M tokens) stays within a 64-bit integer column.
MAX_COUNT = 10**10
DETAILS = (("prompt_tokens_details", "input_tokens_details"), ("completion_tokens_details", "output_tokens_details"))


def sane_count(value: Any) -> bool:
    """A token count: a whole number from 0 to MAX_COUNT (``10.0`` is one), or absent (``None``)."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value <= MAX_COUNT and (isinstance(value, int) or value.is_integer())


def _details(usage: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        details = usage.get(name)
        if isinstance(details, dict):
            return details
    return {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
