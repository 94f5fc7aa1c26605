"""Images and files in OpenAI content parts: their URLs and ``data:`` URLs.

OpenAI clients send media as an ``image_url`` part (an http(s) URL or a ``data:`` URL) or a ``file``
part; providers that take media inline want the MIME type and bare base64. Which types a provider
accepts, and under which aliases, stays in its adapter.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from relaygate.providers.params import invalid

__all__ = ["image_url", "is_data_url", "parse_data_url"]


def is_data_url(url: str) -> bool:
    return url[:5].lower() == "data:"


def image_url(image: Any, where: str) -> str:
    """The URL of an ``image_url`` part at ``where``: an object with ``url``, or a bare string."""
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise invalid(f"{where}.url", "expected an image URL")
    return url


def parse_data_url(url: str, where: str) -> tuple[str, str]:
    """The MIME type and base64 data of a ``data:[<type>][;param=value...][;base64],<data>`` URL.

    The type comes back in lower case, ``""`` when the URL names none; the data is base64 without line
    breaks, whether the URL held base64 or percent-encoded bytes.
    """
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise invalid(where, "a data: URL needs a ',' before its data")
    params = header.split(";")
    mime = params[0].strip().lower()
    if any(param.strip().lower() == "base64" for param in params[1:]):
        # Percent-escapes and line breaks are legal inside a data URL; providers want bare base64.
        return mime, "".join(unquote(payload).split())
    return mime, base64.b64encode(unquote_to_bytes(payload)).decode()
