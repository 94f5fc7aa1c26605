"""What every image adapter reads the same way: the size a request asks for, as pixels or an aspect ratio.

A request asks for a size with ``width`` and ``height`` (Langbase's and Together's way) or OpenAI's
``size`` (``"1024x1536"``, ``"auto"``). Adapters map it to what their provider takes; a value no provider
could use is a 400 naming the field the caller wrote.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from relaygate.image_sizes import parse_size
from relaygate.providers.params import invalid_value

__all__ = ["ASPECT_RATIOS", "IMAGE_SIZES", "aspect_ratio", "nearest_ratio", "ratio_of_request", "requested_size"]

# OpenAI sizes as Gemini's (and OpenRouter's) aspect ratios.
IMAGE_SIZES = {
    "1024x1024": "1:1",
    "1792x1024": "16:9",
    "1024x1792": "9:16",
    "1536x1024": "3:2",
    "1024x1536": "2:3",
}
ASPECT_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})


def requested_size(body: dict[str, Any]) -> tuple[tuple[int, int] | None, str]:
    """The ``(width, height)`` a request asks for and the field that says it (``"width"`` or ``"size"``);
    ``None`` when it asks for none (or ``"auto"``). A ``size`` that is no ``WxH`` is a 400."""
    width, height = body.get("width"), body.get("height")
    if width is not None or height is not None:
        if not (_pixels(width) and _pixels(height)):
            missing = "height" if _pixels(width) else "width"
            raise invalid_value(f"Give '{missing}' as a number of pixels, with the other one.", missing)
        return (width, height), "width"
    size = body.get("size")
    if size is None or size == "auto":
        return None, "size"
    found = parse_size(size)
    if found is None:
        raise invalid_value(f"Unsupported size {size!r}: write it as WIDTHxHEIGHT (e.g. 1024x1024) or auto.", "size")
    return found, "size"


def aspect_ratio(size: Any, param: str = "size") -> str | None:
    """The aspect ratio (``"16:9"``) for a size (``"1792x1024"``, or a ratio itself), ``None`` for ``auto``
    or no size; a size of a ratio no provider makes is a 400 naming ``param``."""
    if size is None or size == "auto":
        return None
    if isinstance(size, str):
        if size in IMAGE_SIZES:
            return IMAGE_SIZES[size]
        if size in ASPECT_RATIOS:
            return size
        found = parse_size(size)
        if found is not None:
            divisor = math.gcd(*found)
            ratio = f"{found[0] // divisor}:{found[1] // divisor}"
            if ratio in ASPECT_RATIOS:
                return ratio
    raise invalid_value(
        f"Unsupported size {size!r}: use auto, {', '.join(IMAGE_SIZES)}, or a size of ratio "
        f"{', '.join(sorted(ASPECT_RATIOS))}.",
        param,
    )


def nearest_ratio(size: tuple[int, int]) -> str:
    """The supported aspect ratio closest to ``size``'s (by the logarithm of the ratio, so that 2:1 is as
    far from 1:1 as 1:2 is)."""
    wanted = math.log(size[0] / size[1])

    def distance(ratio: str) -> float:
        width, height = ratio.split(":")
        return abs(math.log(int(width) / int(height)) - wanted)

    return min(sorted(ASPECT_RATIOS), key=distance)


def ratio_of_request(body: dict[str, Any]) -> str | None:
    """The aspect ratio a request asks for: the nearest one to its ``width`` and ``height`` (a provider that
    takes ratios makes its own pixels), or its ``size``'s (a 400 when no ratio fits it)."""
    size, param = requested_size(body)
    if size is None:
        return aspect_ratio(body.get("size")) if body.get("size") not in (None, "auto") else None
    return nearest_ratio(size) if param == "width" else aspect_ratio(body.get("size"), param)


def _pixels(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
