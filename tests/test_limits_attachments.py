"""The token bounds of attachments (:mod:`relaygate.limits.attachments`): images, PDFs by their pages, text,
audio, and what cannot be sized."""

from __future__ import annotations

import base64
import zlib
from typing import Any

import pytest

from relaygate.limits.attachments import (
    AUDIO_BYTES_PER_TOKEN,
    IMAGE_TOKENS,
    PDF_MAX_PAGES,
    PDF_PAGE_TOKENS,
    part_tokens,
    pdf_pages,
)
from relaygate.limits.estimate import MESSAGE_OVERHEAD, REQUEST_OVERHEAD, estimate

PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 9 0 R >>"


def pdf(pages: int, *, compressed: bool = False, count: int | None = None) -> bytes:
    """A PDF of ``pages`` page objects (in a compressed object stream when ``compressed``) whose page tree
    says ``/Count count`` (``pages`` by default)."""
    tree = b"<< /Type /Pages /Kids [] /Count %d >>" % (pages if count is None else count)
    out = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj " + tree + b" endobj\n"
    if compressed:
        data = zlib.compress(b" ".join([PAGE] * pages))
        out += b"3 0 obj << /Type /ObjStm /N %d /First 0 /Filter /FlateDecode /Length %d >>\nstream\r\n" % (
            pages,
            len(data),
        )
        out += data + b"\nendstream endobj\n"
    else:
        out += b"".join(b"%d 0 obj %s endobj\n" % (10 + i, PAGE) for i in range(pages))
    return out + b"trailer << /Root 1 0 R >>\n%%EOF\n"


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_a_pdfs_pages_are_counted_in_the_clear_and_in_object_streams() -> None:
    assert pdf_pages(pdf(12)) == 12
    assert pdf_pages(pdf(30, compressed=True)) == 30
    # A page tree that says fewer pages than there are objects does not hide them, nor the other way round.
    assert pdf_pages(pdf(7, compressed=True, count=1)) == 7
    assert pdf_pages(pdf(2, count=40)) == 40
    assert pdf_pages(pdf(5000, compressed=True)) == PDF_MAX_PAGES


def test_a_pdf_whose_pages_cannot_be_counted_is_not_sized() -> None:
    assert pdf_pages(b"%PDF-1.4\n" + b"x" * 20_000) is None  # no page tree, no pages
    assert pdf_pages(b"not a pdf /Type /Page") is None
    hidden = pdf(3).replace(b"/Type /Page ", b"/Type /Pagez ").replace(b"/Count 3", b"")
    assert pdf_pages(hidden + b"4 0 obj << /Type /ObjStm /N 3 >>\nstream\nencrypted bytes\nendstream") is None


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


@pytest.mark.parametrize(
    ("part", "tokens"),
    [
        (image_part("data:image/png;base64," + "A" * 1_000_000), IMAGE_TOKENS),
        (image_part("https://example.com/cat"), IMAGE_TOKENS),
        (image_part("https://example.com/cat.JPG?size=big"), IMAGE_TOKENS),
        # A PDF sent as an image (Anthropic and Gemini read it as a document), or as a file.
        (image_part(data_url("application/pdf", pdf(12))), 12 * PDF_PAGE_TOKENS),
        ({"type": "file", "file": {"file_data": data_url("application/pdf", pdf(9, compressed=True))}}, 45_000),
        (
            {"type": "file", "file": {"filename": "a.pdf", "file_data": base64.b64encode(pdf(2)).decode()}},
            2 * PDF_PAGE_TOKENS,
        ),
        (image_part("data:text/plain;base64," + base64.b64encode(b"hello").decode()), 5),
        (image_part("data:,hello%20world"), 11),
        ({"type": "file", "file": {"file_data": "data:;base64," + base64.b64encode(b"abc").decode()}}, 3),
        (
            {"type": "input_audio", "input_audio": {"data": base64.b64encode(b"\0" * 4000).decode(), "format": "wav"}},
            4000 // AUDIO_BYTES_PER_TOKEN,
        ),  # fmt: skip
        (image_part(data_url("audio/mpeg", b"\0" * 401)), 101),
        # What the request does not hold, or whose length its size does not bound.
        ({"type": "file", "file": {"file_id": "file-abc123"}}, None),
        ({"type": "file", "file": {"file_id": "https://example.com/report.pdf"}}, None),
        (image_part("https://example.com/report.pdf"), None),
        (image_part("gs://bucket/talk.mp4"), None),
        (image_part(data_url("video/mp4", b"\0" * 100)), None),
        (image_part(data_url("audio/ogg", b"\0" * 100)), None),
        (image_part(data_url("application/pdf", b"%PDF-1.4\n" + b"x" * 20_000)), None),
        # Not media at all: the provider refuses the request and bills nothing.
        ({"type": "image_url", "image_url": {}}, 0),
        ({"type": "file", "file": {}}, 0),
    ],
)
def test_attachments_cost_their_bound(part: dict[str, Any], tokens: int | None) -> None:
    assert part_tokens(part) == tokens


def test_the_estimate_counts_attachments_and_lists_those_it_cannot_size() -> None:
    parts = [
        {"type": "text", "text": "Read these"},
        image_part(data_url("application/pdf", pdf(100))),
        {"type": "file", "file": {"file_id": "file-abc123"}},
    ]
    worst = estimate("chat", {"messages": [{"role": "user", "content": parts}], "max_tokens": 1}, 1)
    assert worst.prompt_tokens == REQUEST_OVERHEAD + MESSAGE_OVERHEAD + len(b'"user"') + 10 + 100 * PDF_PAGE_TOKENS
    assert worst.unsized == ("messages[0].content[2]",)
