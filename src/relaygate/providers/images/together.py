"""Together's Images API: ``/images/generations`` with ``width``, ``height``, ``steps`` and ``image_url``.

OpenAI's ``size`` becomes ``width`` and ``height``; ``response_format: b64_json`` is Together's ``base64``.
OpenAI's ``quality`` has no Together counterpart and is left out. The answer is OpenAI's shape already
(``data[].url`` or ``data[].b64_json``).
"""

from __future__ import annotations

from typing import Any

from relaygate.providers.images.params import requested_size
from relaygate.requests import GATEWAY_FIELDS

__all__ = ["together_body"]

JSON = dict[str, Any]

RESPONSE_FORMATS = {"b64_json": "base64", "base64": "base64", "url": "url"}


def together_body(body: JSON, model: str) -> JSON:
    size, _ = requested_size(body)
    out = {
        key: value
        for key, value in body.items()
        if key not in GATEWAY_FIELDS and key not in ("size", "quality", "width", "height")
    }
    out["model"] = model
    if size is not None:
        out["width"], out["height"] = size
    if "response_format" in out:
        out["response_format"] = RESPONSE_FORMATS.get(str(out["response_format"]), out["response_format"])
    return out
