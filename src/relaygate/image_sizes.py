"""The size an image request asks for, however it says it: OpenAI's ``size`` (``"1024x1536"``) or
``width`` and ``height`` in pixels (Langbase's and Together's).

The adapters map it to what their provider takes (a size the model makes, an aspect ratio, width and
height), and pricing and the limits read it to price a call by its size. Reading is lenient here
(anything unusable is "not said"); the adapters refuse bad values with a 400 naming the field.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DEFAULT_DIMENSIONS", "dimensions", "megapixels", "parse_size", "size_label"]

# What a request that says nothing is assumed to make, where a price needs a size (per megapixel).
DEFAULT_DIMENSIONS = (1024, 1024)
# A megapixel as image providers bill it (1024 x 1024 is one).
PIXELS_PER_MEGAPIXEL = 1024 * 1024

_SIZE = re.compile(r"^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$")


def parse_size(size: Any) -> tuple[int, int] | None:
    """``(width, height)`` of a ``"WxH"`` size; ``None`` for anything else (``auto`` included)."""
    if not isinstance(size, str):
        return None
    match = _SIZE.match(size)
    if match is None:
        return None
    width, height = int(match.group(1)), int(match.group(2))
    return (width, height) if width > 0 and height > 0 else None


def dimensions(body: dict[str, Any]) -> tuple[int, int] | None:
    """The size a request asks for: ``width`` and ``height`` when both are given, else ``size``."""
    width, height = _pixels(body.get("width")), _pixels(body.get("height"))
    if width is not None and height is not None:
        return width, height
    return parse_size(body.get("size"))


def size_label(body: dict[str, Any]) -> str | None:
    """The requested size written as OpenAI writes it (``"1024x1024"``), or ``None`` when none is asked."""
    found = dimensions(body)
    return f"{found[0]}x{found[1]}" if found is not None else None


def megapixels(size: tuple[int, int]) -> float:
    return size[0] * size[1] / PIXELS_PER_MEGAPIXEL


def _pixels(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None
