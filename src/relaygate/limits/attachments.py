"""The most tokens a media part of a chat message can cost: images, PDFs, text files, audio.

A provider bills media by what it holds, not by the bytes of the request: an image by its pixels (bounded,
since every provider scales large images down), a PDF by its pages, audio and video by their length. So:

- an image, inline or by URL, costs :data:`IMAGE_TOKENS`, above the largest any provider bills for one;
- a PDF (an ``image_url`` or ``file`` part holding a ``data:`` URL of ``application/pdf``, which Anthropic
  and Gemini read as a document) costs :data:`PDF_PAGE_TOKENS` a page. Its pages are counted from the file:
  its page objects and the ``/Count`` of its page tree, in the clear and in compressed object streams; a PDF
  whose pages cannot be counted (encrypted, damaged) cannot be sized;
- inline text costs a token per byte, as any text does (:mod:`relaygate.limits.estimate`);
- inline WAV, MP3 and AIFF audio a token per :data:`AUDIO_BYTES_PER_TOKEN` bytes: these codecs take at
  least 1,000 bytes a second, which providers bill at 32 tokens a second at most (Gemini);
- anything else cannot be sized from the request: a file by its id (``file_id``), a remote document, audio
  or video (an ``http(s)``/``gs`` URL whose name says it is no image), inline video and compressed audio,
  whose length their size does not bound. :func:`part_tokens` answers ``None`` for those, and the limiter
  decides (see ``unsized_attachment_tokens`` in :mod:`relaygate.limits.config`).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import zlib
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from relaygate.providers.gemini.media import EXTENSION_TYPES

__all__ = ["AUDIO_BYTES_PER_TOKEN", "IMAGE_TOKENS", "PDF_MAX_PAGES", "PDF_PAGE_TOKENS", "part_tokens", "pdf_pages"]

# OpenAI bills a high-detail image at most ~2,500 tokens (gpt-4.1-mini's 1,536 patches x 1.62), Anthropic
# ~1,600 (1.15 megapixels / 750); Gemini's tiles stay well below.
IMAGE_TOKENS = 3000
# Anthropic reads a PDF page as its text (1,500 to 3,000 tokens for a dense page, its docs say) and as an
# image (~1,600 at most); OpenAI does the same; Gemini bills 258 a page.
PDF_PAGE_TOKENS = 5000
# No provider reads more pages in one request (Gemini 1,000; Anthropic 100, or 600 with a 1M context): a
# larger page count is refused before anything is billed.
PDF_MAX_PAGES = 1000
AUDIO_BYTES_PER_TOKEN = 4
# The most a PDF's object streams are inflated to while counting its pages; past it the PDF is not sized.
MAX_INFLATED_BYTES = 64 * 1024 * 1024

TEXT_TYPES = frozenset({"application/json", "application/xml", "application/x-yaml", "application/yaml"})
AUDIO_BY_BYTES = frozenset(
    {"audio/wav", "audio/x-wav", "audio/wave", "audio/mp3", "audio/mpeg", "audio/aiff", "audio/x-aiff"}
)
# Extensions of remote files that are no image: Gemini fetches them as documents, audio or video.
NOT_IMAGE_EXTENSIONS = frozenset(
    "pdf txt csv html md json xml wav mp3 mpeg aiff aac ogg oga opus flac m4a "
    "mp4 mpg mov avi flv webm wmv 3gp mkv".split()
)

_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_COUNT = re.compile(rb"/Count\s+(\d{1,9})")
_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm(?![A-Za-z])")
_STREAM = re.compile(rb"stream\r?\n")


def part_tokens(part: dict[str, Any]) -> int | None:
    """Tokens of an ``image_url``, ``file`` or ``input_audio`` part at most; ``None``: it cannot be sized."""
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            return 0  # no media in it: the provider refuses the request, nothing is billed
        return _data_url_tokens(url) if url[:5].lower() == "data:" else _remote_tokens(url)
    if kind == "file":
        file = part.get("file")
        if not isinstance(file, dict):
            return 0
        data = file.get("file_data")
        if isinstance(data, str) and data[:5].lower() == "data:":
            return _data_url_tokens(data)
        if isinstance(data, str) and data:
            # Bare base64 with a file name (Gemini's adapter takes its type from the name's extension).
            name = file.get("filename")
            extension = name.rsplit(".", 1)[-1].lower() if isinstance(name, str) and "." in name else ""
            # The type as the Gemini adapter reads it from the file's name.
            return _media_tokens(EXTENSION_TYPES.get(extension, ""), data, is_base64=True)
        return None if file.get("file_id") is not None else 0
    if kind == "input_audio":
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        return math.ceil(_base64_size(data) / AUDIO_BYTES_PER_TOKEN) if isinstance(data, str) else 0
    return 0


def pdf_pages(data: bytes) -> int | None:
    """How many pages a PDF has at most (capped at :data:`PDF_MAX_PAGES`), ``None`` when they cannot be told.

    The larger of its page objects and the largest ``/Count`` (the page tree's, or an outline's, which only
    errs upwards), found in the file as it is and in its object streams, where PDF 1.5 and later keep the
    page objects compressed.
    """
    if b"%PDF" not in data[:1024]:
        return None
    pages, count = _pages_in(data)
    inflated = 0
    for found in _OBJECT_STREAM.finditer(data):
        start = _STREAM.search(data, found.end())
        if start is None:
            return None
        end = data.find(b"endstream", start.end())
        decompressor = zlib.decompressobj()
        try:
            text = decompressor.decompress(data[start.end() : end if end >= 0 else len(data)], MAX_INFLATED_BYTES)
        except zlib.error:
            return None  # another filter, or encrypted: its pages are out of sight
        inflated += len(text)
        if decompressor.unconsumed_tail or inflated > MAX_INFLATED_BYTES:
            return None
        more_pages, more_count = _pages_in(text)
        pages, count = pages + more_pages, max(count, more_count)
    found_pages = max(pages, count)
    return min(found_pages, PDF_MAX_PAGES) if found_pages else None


def _pages_in(text: bytes) -> tuple[int, int]:
    return len(_PAGE.findall(text)), max((int(n) for n in _COUNT.findall(text)), default=0)


def _data_url_tokens(url: str) -> int | None:
    header, comma, payload = url[5:].partition(",")
    if not comma:
        return 0  # not a data URL the adapters accept
    params = header.split(";")
    is_base64 = any(param.strip().lower() == "base64" for param in params[1:])
    # RFC 2397: a data URL that names no type holds text.
    return _media_tokens(params[0].strip().lower() or "text/plain", payload, is_base64=is_base64, quoted=True)


def _media_tokens(mime: str, payload: str, *, is_base64: bool, quoted: bool = False) -> int | None:
    if mime.startswith("image/"):
        return IMAGE_TOKENS
    if mime == "application/pdf":
        data = _decode(payload, is_base64=is_base64, quoted=quoted)
        pages = pdf_pages(data) if data is not None else None
        return None if pages is None else pages * PDF_PAGE_TOKENS
    if mime.startswith("text/") or mime in TEXT_TYPES:
        return _size(payload, is_base64=is_base64, quoted=quoted)
    if mime in AUDIO_BY_BYTES:
        return math.ceil(_size(payload, is_base64=is_base64, quoted=quoted) / AUDIO_BYTES_PER_TOKEN)
    return None


def _remote_tokens(url: str) -> int | None:
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    # Without a telling extension a URL is taken for an image, as every adapter sends it.
    return None if extension in NOT_IMAGE_EXTENSIONS else IMAGE_TOKENS


def _size(payload: str, *, is_base64: bool, quoted: bool) -> int:
    if is_base64:
        return _base64_size(unquote(payload) if quoted else payload)
    return len(unquote_to_bytes(payload)) if quoted else len(payload.encode())


def _base64_size(data: str) -> int:
    """Bytes that base64 ``data`` decodes to, from its length (line breaks and padding left out)."""
    length = len(data) - sum(data.count(space) for space in " \r\n\t")
    return max(length * 3 // 4 - data[-2:].count("="), 0)


def _decode(payload: str, *, is_base64: bool, quoted: bool) -> bytes | None:
    if not is_base64:
        return unquote_to_bytes(payload) if quoted else payload.encode()
    try:
        return base64.b64decode("".join((unquote(payload) if quoted else payload).split()))
    except (binascii.Error, ValueError):
        return None
