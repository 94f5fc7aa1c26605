"""The image an image-to-image request starts from, as bytes, for providers that want it uploaded.

A ``data:`` URL is decoded. An http(s) URL is fetched by the gateway through the provider's own pool,
with none of the provider's headers (its key goes nowhere but the provider), at most
:data:`MAX_IMAGE_BYTES` within :data:`FETCH_SECONDS`, and only when it answers 200 with an image type.
Addresses no caller has any business making the gateway fetch (link-local, cloud metadata) are refused
before anything is sent. Every failure is a 400 naming ``image_url``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio

from relaygate.errors import GatewayError
from relaygate.providers.media import is_data_url, parse_data_url
from relaygate.providers.params import invalid_value
from relaygate.upstream import UpstreamClient, UpstreamRequest

__all__ = ["FETCH_SECONDS", "MAX_IMAGE_BYTES", "InputImage", "input_image"]

# The longest an image to edit may take to arrive.
FETCH_SECONDS = 30.0
# OpenAI takes images of up to 50 MB for gpt-image models; 25 MB keeps one request's memory bounded.
MAX_IMAGE_BYTES = 25 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
MIME_ALIASES = {"image/jpg": "image/jpeg"}
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


@dataclass(frozen=True, slots=True)
class InputImage:
    mime_type: str
    data: bytes


async def input_image(url: str, client: UpstreamClient, provider: str) -> InputImage:
    """The image at ``url`` (a ``data:`` URL or an http(s) URL)."""
    if is_data_url(url):
        mime, encoded = parse_data_url(url, "image_url")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise invalid_value("The data: URL in 'image_url' does not hold valid base64.", "image_url") from None
        _bounded(data)
        return InputImage(_image_type(mime or "image/png"), data)
    _check_address(url)
    try:
        with anyio.fail_after(FETCH_SECONDS):
            return await _fetch(url, client, provider)
    except TimeoutError:
        raise invalid_value(
            f"The image at 'image_url' did not arrive within {FETCH_SECONDS:g} s.", "image_url"
        ) from None


async def _fetch(url: str, client: UpstreamClient, provider: str) -> InputImage:
    try:
        response = await client.send(UpstreamRequest("GET", url, {"accept": "image/*"}))
    except GatewayError:
        raise invalid_value(
            f"The image at 'image_url' could not be fetched for provider '{provider}'.", "image_url"
        ) from None
    try:
        if response.status != 200:
            raise invalid_value(f"Fetching 'image_url' answered with status {response.status}.", "image_url")
        mime = _image_type(str(response.headers.get("content-type") or "").split(";")[0].strip().lower())
        buffer = bytearray()
        async for chunk in response.iter_raw():
            buffer += chunk
            _bounded(buffer)
        data = bytes(buffer)
    except GatewayError as error:
        if error.param == "image_url":
            raise
        raise invalid_value("The image at 'image_url' could not be read whole.", "image_url") from None
    finally:
        await response.aclose()
    return InputImage(mime, data)


def _image_type(mime: str) -> str:
    mime = MIME_ALIASES.get(mime, mime)
    if mime not in IMAGE_TYPES:
        raise invalid_value(
            f"'image_url' must be a PNG, JPEG, WEBP or GIF image, not {mime or 'an untyped body'!r}.", "image_url"
        )
    return mime


def _bounded(data: bytes | bytearray) -> bytes | bytearray:
    if len(data) > MAX_IMAGE_BYTES:
        raise invalid_value(
            f"The image in 'image_url' is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB.", "image_url"
        )
    return data


def _check_address(url: str) -> None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise invalid_value("'image_url' must be an http(s) URL or a data: URL.", "image_url")
    if host in METADATA_HOSTS:
        raise invalid_value("'image_url' may not name a cloud metadata service.", "image_url")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        raise invalid_value("'image_url' may not name a link-local, multicast or unspecified address.", "image_url")
