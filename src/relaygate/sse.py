"""Incremental Server-Sent Events decoding over raw network reads.

Reads split anywhere: inside a ``data:`` line, between ``\\r`` and ``\\n``, inside a multi-byte UTF-8
character. The decoder works on bytes and hands out only complete events, so JSON payloads are
always parsed whole and no character is ever cut.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["DONE", "SSEDecoder", "SSEEvent", "frame"]

DONE = b"[DONE]"


class SSEEvent(NamedTuple):
    data: bytes
    event: bytes | None = None


def frame(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


class SSEDecoder:
    __slots__ = ("_buffer", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                # It may be the first half of "\r\n"; decide when the next read comes.
                chunk = chunk[:-1]
                self._pending_cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = _parse_block(buffer[start:end])
            if event is not None:
                events.append(event)
            start = end + 2
        self._buffer = buffer[start:] if start else buffer
        return events

    def close(self) -> list[SSEEvent]:
        """Events left when the stream ends without a final blank line."""
        rest = self._buffer.strip(b"\n")
        self._buffer = b""
        self._pending_cr = False
        event = _parse_block(rest) if rest else None
        return [event] if event is not None else []


def _parse_block(block: bytes) -> SSEEvent | None:
    if block.startswith(b"data: ") and b"\n" not in block:
        return SSEEvent(block[6:])
    data: list[bytes] = []
    event: bytes | None = None
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            event = line[6:].strip()
        # comments (":"), "id:", "retry:" and unknown fields carry nothing a chat stream needs
    if not data:
        return None
    return SSEEvent(b"\n".join(data), event)
