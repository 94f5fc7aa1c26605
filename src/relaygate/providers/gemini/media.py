"""Images, audio and files as Gemini parts: ``inlineData`` for data, ``fileData`` for a URL Gemini fetches.

Gemini takes the MIME types it lists (:data:`SUPPORTED_MIME_TYPES`); anything else is refused here so
that the client learns which part was wrong. A URL's type comes from its extension, by our own table
rather than ``mimetypes``, whose answers depend on the host. A URL without a known extension is taken
for an image (a file id for a PDF) and left for Gemini to sniff.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from relaygate.providers.media import is_data_url, parse_data_url
from relaygate.providers.params import invalid_value

__all__ = ["AUDIO_FORMATS", "file_part", "media_part"]

# What Gemini reads inline or from a URL (ai.google.dev, "supported MIME types"); anything else is refused
# here so that the client learns which part was wrong.
SUPPORTED_MIME_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/heic",
        "image/heif",
        "application/pdf",
        "text/plain",
        "audio/wav",
        "audio/mp3",
        "audio/mpeg",
        "audio/aiff",
        "audio/aac",
        "audio/ogg",
        "audio/flac",
        "video/mp4",
        "video/mpeg",
        "video/mov",
        "video/avi",
        "video/x-flv",
        "video/mpg",
        "video/webm",
        "video/wmv",
        "video/3gpp",
    }
)
MIME_ALIASES = {"image/jpg": "image/jpeg", "audio/x-wav": "audio/wav", "audio/wave": "audio/wav"}
# Our own table rather than ``mimetypes``, whose answers depend on the host's /etc/mime.types.
EXTENSION_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "wav": "audio/wav",
    "mp3": "audio/mp3",
    "aiff": "audio/aiff",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "mp4": "video/mp4",
    "mpeg": "video/mpeg",
    "mpg": "video/mpg",
    "mov": "video/mov",
    "avi": "video/avi",
    "flv": "video/x-flv",
    "webm": "video/webm",
    "wmv": "video/wmv",
    "3gp": "video/3gpp",
}
AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mp3"}


def file_part(file: Any, param: str) -> dict[str, Any]:
    if not isinstance(file, dict):
        raise invalid_value("A file part needs a 'file' object.", param)
    data = file.get("file_data")
    if isinstance(data, str) and data.startswith("data:"):
        return media_part(data, f"{param}.file_data")
    if isinstance(data, str) and data:
        filename = file.get("filename")
        mime = _mime_of_path(filename) if isinstance(filename, str) else None
        if mime is None:
            raise invalid_value(
                "Give 'file_data' as a data: URL, or a 'filename' with an extension.", f"{param}.file_data"
            )
        _check_mime(mime, f"{param}.filename")
        return {"inlineData": {"mimeType": mime, "data": data}}
    file_id = file.get("file_id")
    if isinstance(file_id, str) and urlsplit(file_id).scheme.lower() in ("http", "https", "gs"):
        return media_part(file_id, f"{param}.file_id", default_mime="application/pdf")
    raise invalid_value("Gemini takes files as a data: URL in 'file_data' or as an http(s):// or gs:// URL.", param)


def media_part(url: str, param: str, *, default_mime: str = "image/jpeg") -> dict[str, Any]:
    """``inlineData`` for a data URL, ``fileData`` for a URL Gemini fetches itself."""
    if is_data_url(url):
        mime, data = _data_url(url, param)
        return {"inlineData": {"mimeType": mime, "data": data}}
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "gs"):
        raise invalid_value("A media URL must be a data: URL or an http://, https:// or gs:// URL.", param)
    # A URL without a known extension (…/image?id=3) is most likely an image; Gemini sniffs the bytes.
    mime = _mime_of_path(urlsplit(url).path) or default_mime
    _check_mime(mime, param)
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _data_url(url: str, param: str) -> tuple[str, str]:
    mime, data = parse_data_url(url, param)
    mime = MIME_ALIASES.get(mime, mime) or "text/plain"  # a data URL that names no type holds text
    _check_mime(mime, param)
    return mime, data


def _mime_of_path(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    return EXTENSION_TYPES.get(name.rsplit(".", 1)[-1].lower())


def _check_mime(mime: str, param: str) -> None:
    if mime not in SUPPORTED_MIME_TYPES:
        raise invalid_value(
            f"Gemini does not accept media of type {mime!r}; images may be PNG, JPEG, WEBP, HEIC or HEIF.", param
        )
