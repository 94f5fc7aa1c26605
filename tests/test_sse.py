from __future__ import annotations

import pytest

from relaygate.sse import SSEDecoder, SSEEvent

STREAM = (
    b": keep-alive comment\n\n"
    b'data: {"text": "h\xc3\xa9llo \xf0\x9f\x8e\x89"}\n\n'
    b"event: error\r\n"
    b'data: {"error": 1}\r\n\r\n'
    b"id: 7\nretry: 10\ndata:first\ndata: second\n\n"
    b"data: [DONE]\r\r"
)
EXPECTED = [
    SSEEvent('{"text": "héllo 🎉"}'.encode()),
    SSEEvent(b'{"error": 1}', b"error"),
    SSEEvent(b"first\nsecond"),
    SSEEvent(b"[DONE]"),
]


def decode(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.close()


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_at_every_byte(cut: int) -> None:
    assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_byte_by_byte() -> None:
    assert decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_a_last_event_without_its_blank_line_is_still_delivered() -> None:
    assert decode([b"data: a\n\ndata: [DONE]\n"]) == [SSEEvent(b"a"), SSEEvent(b"[DONE]")]


def test_events_are_handed_out_as_soon_as_they_are_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b") == [SSEEvent(b"a")]
    assert decoder.close() == [SSEEvent(b"b")]
