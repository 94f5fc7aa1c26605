"""Model-name normalisation: how a model name the provider answers to finds the name its price is listed under.

Providers serve dated snapshots and aliases (``gpt-4o-2024-08-06``, ``claude-sonnet-4-20250514``,
``models/gemini-2.0-flash-001``, ``gemini-2.5-pro-preview-06-05``) while prices are published per model.
:func:`name_forms` lists a name's progressively normalised forms, most specific first, so a snapshot that
has a price of its own (``gpt-4o-2024-05-13``) still finds it. :func:`prefix_match` is the last resort and
refuses whenever the rest of the name may be a different product at a different price: an unknown model has
no price rather than a guessed one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["name_forms", "prefix_match"]

_Rule = tuple[re.Pattern[str], str]


def _rules(*rules: tuple[str, str]) -> tuple[_Rule, ...]:
    return tuple((re.compile(pattern), replacement) for pattern, replacement in rules)


_LATEST = ("-latest$", "")
# Applied one at a time, first match first, until none applies; each step yields one more general form.
_RULES: dict[str, tuple[_Rule, ...]] = {
    "openai": _rules(
        _LATEST,
        (r"-\d{4}-\d{2}-\d{2}$", ""),  # gpt-4o-2024-08-06
        (r"-\d{4}$", ""),  # gpt-3.5-turbo-0125, gpt-4-0613: the older month-day snapshots
    ),
    "anthropic": _rules(
        _LATEST,
        (r"(?<=\d)\.(?=\d)", "-"),  # claude-sonnet-4.5, as gateways and SDK docs often spell it
        (r"[-@]\d{8}$", ""),  # claude-sonnet-4-20250514; Vertex AI's claude-3-5-haiku@20241022
        (r"-v\d+(?::\d+)?$", ""),  # Vertex AI's claude-3-5-sonnet-v2
        (r"(?<=-\d)-0$", ""),  # claude-sonnet-4-0 is Anthropic's alias of claude-sonnet-4
    ),
    "gemini": _rules(
        _LATEST,
        ("^models/", ""),  # the Gemini API's resource names
        # Previews and experiments priced as their model: gemini-2.5-flash-preview-09-2025, -exp-1206.
        (r"-(?:preview|exp)(?:-\d{2}-\d{2,4}|-\d{4})?$", ""),
        (r"-\d{3}$", ""),  # gemini-2.0-flash-001
    ),
}
_DEFAULT_RULES = _rules(_LATEST)

# Words that, after a known model's name, name a variant with a price of its own (gpt-5-pro, o3-mini,
# gpt-4o-realtime-preview, gpt-4o-mini-tts, gemini-2.5-flash-preview-tts): a prefix match is refused for them.
_OWN_PRICE_WORDS = frozenset(
    {
        "audio",
        "computer",
        "deep",
        "embedding",
        "flash",
        "image",
        "large",
        "lite",
        "live",
        "max",
        "mini",
        "nano",
        "plus",
        "pro",
        "realtime",
        "research",
        "search",
        "small",
        "speech",
        "transcribe",
        "tts",
        "turbo",
        "ultra",
        "vision",
    }
)


def name_forms(kind: str, model: str) -> list[str]:
    """The forms of ``model`` to look a price up under, most specific first (the first is only lower-cased)."""
    name = model.strip().lower()
    forms = [name]
    rules = _RULES.get(kind, _DEFAULT_RULES)
    changed = True
    while changed:
        changed = False
        for pattern, replacement in rules:
            shorter = pattern.sub(replacement, name)
            if shorter != name and shorter:
                name = shorter
                forms.append(name)
                changed = True
                break
    return forms


def prefix_match(name: str, keys: Iterable[str]) -> str | None:
    """The longest key that ``name`` extends by ``-<suffix>``, when the suffix cannot change the price.

    ``gpt-5-codex`` and ``gpt-5-chat`` find ``gpt-5``. Refused: a suffix that starts with a digit (another
    version or size: ``claude-opus-4-6`` is not ``claude-opus-4``, ``gemini-1.5-flash-8b``) and a suffix
    holding a word of :data:`_OWN_PRICE_WORDS` (``gpt-5-pro``, ``gpt-4o-realtime-preview``).
    """
    longest = max((key for key in keys if name.startswith(key + "-")), key=len, default=None)
    if longest is None:
        return None
    # Only the longest key is considered: when its suffix is refused, a shorter key is an even looser match
    # (foo-bar-2 is a version of foo-bar, not a foo).
    rest = name[len(longest) + 1 :]
    if not rest or rest[0].isdigit() or _OWN_PRICE_WORDS.intersection(re.split(r"[-_.:]", rest)):
        return None
    return longest
