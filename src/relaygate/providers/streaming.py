"""What the adapters' streams share: reading upstream SSE events as they arrive and ending the stream.

:func:`relay` feeds every network read to an SSE decoder and the decoded events to a
:class:`StreamMapper`, which turns them into OpenAI frames. Each event is JSON; an event that is not is
logged and skipped, and an event reporting an error becomes the final ``data: {"error": ...}`` frame,
without ``[DONE]``. Once the stream has ended, the rest of the body is read (for a moment at most) so
that the connection goes back to the pool. A stream cut short (client gone, upstream failed) still
reports what the mapper has counted so far (:meth:`StreamMapper.on_close`). Every OpenAI chunk goes
through :meth:`StreamMapper.chunk_frame`, where output guards (``ctx.output_filter``) may hold it back,
rewrite it or stop the stream with a ``content_filter`` chunk and an error event.

:class:`ChunkMapper` is the base of adapters that write OpenAI ``chat.completion.chunk`` frames
themselves rather than passing the upstream's on.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, ClassVar

import anyio
import orjson

from relaygate.context import RequestContext, StreamStopped
from relaygate.errors import UpstreamError, sse_error_frame
from relaygate.providers.errors import not_a_stream, stream_error
from relaygate.sse import DONE, SSEDecoder, SSEEvent, frame
from relaygate.upstream import UpstreamResponse

__all__ = ["DONE_FRAME", "DRAIN_TIMEOUT", "ChunkMapper", "StreamMapper", "relay", "relay_native"]

logger = logging.getLogger("relaygate.providers")

DONE_FRAME = frame(DONE)
DRAIN_TIMEOUT = 1.0
# A body that is not an event stream is given up on after this much of it without an event.
NOT_A_STREAM_BYTES = 64 * 1024

JSON = dict[str, Any]


class StreamMapper(ABC):
    """One stream's state: the upstream's JSON events in, OpenAI frames out."""

    # OpenAI-compatible servers end their streams with "data: [DONE]"; other providers send no such event.
    ends_on_done: ClassVar[bool] = False

    def __init__(self, provider: str, ctx: RequestContext, *, usage_chunk: bool) -> None:
        self.provider = provider
        self.ctx = ctx
        self.usage_chunk = usage_chunk

    def feed(self, events: list[SSEEvent]) -> tuple[bytes, bool]:
        """Frames for ``events``, and whether the stream has ended (done or error)."""
        out = b""
        for event in events:
            if self.ends_on_done and event.data == DONE:
                return out + self.finish(), True
            try:
                payload = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                logger.warning("provider %s sent a stream event that is not JSON; skipped", self.provider)
                continue
            if not isinstance(payload, dict):
                continue
            error = self.error_in(payload, event)
            if error is not None:
                self.ctx.scrub(error)  # the provider's words reach the client: not its secrets
                self.ctx.error = error.code or error.type
                return out + sse_error_frame(error), True
            try:
                frames, ended = self.on_event(payload, event)
            except StreamStopped as stop:
                return out + self.stopped(stop), True
            out += frames
            if ended:
                return out, True
        return out, False

    def chunk_frame(self, chunk: JSON, data: bytes | None = None) -> bytes:
        """Records an OpenAI chunk and returns its frame; ``data`` is the chunk's JSON when it is at hand.

        An output filter on the context (output guards) sees the chunk first and may hold it back,
        replace it, or stop the stream (:class:`~relaygate.context.StreamStopped`).
        """
        output_filter = self.ctx.output_filter
        if output_filter is not None:
            replaced = output_filter.on_chunk(chunk)
            if replaced is not None:
                return self._frames(replaced)
        # Recording may price the usage object in place (usage.cost): then the chunk is written anew.
        changed = self.ctx.record_chunk(chunk)
        return frame(data if data is not None and not changed else orjson.dumps(chunk))

    def flush(self) -> bytes:
        """Frames of the text an output filter still holds back, for the end of the stream."""
        output_filter = self.ctx.output_filter
        return b"" if output_filter is None else self._frames(output_filter.close())

    def stopped(self, stop: StreamStopped) -> bytes:
        """The last frames of a stream an output filter stopped: its content_filter chunk and error."""
        self.ctx.error = stop.error.code or stop.error.type
        return self._frames([stop.chunk]) + sse_error_frame(stop.error)

    def finish(self) -> bytes:
        """Held-back text, then :meth:`end`: the last frames of a stream that ended without an error."""
        try:
            return self.flush() + self.end()
        except StreamStopped as stop:
            return self.stopped(stop)

    def _frames(self, chunks: list[JSON]) -> bytes:
        out = b""
        for chunk in chunks:
            self.ctx.record_chunk(chunk)
            out += frame(orjson.dumps(chunk))
        return out

    def error_in(self, payload: JSON, event: SSEEvent) -> UpstreamError | None:
        """The error an event reports (``{"error": ...}``), or ``None`` for any other event."""
        return stream_error(self.provider, payload["error"]) if "error" in payload else None

    @abstractmethod
    def on_event(self, payload: JSON, event: SSEEvent) -> tuple[bytes, bool]:
        """Frames for one event that is not an error, and whether it ends the stream."""

    def end(self) -> bytes:
        """The last frames of a stream whose body ended without an event that ends it."""
        # A stream that closes cleanly without "[DONE]" is complete all the same (some servers omit it).
        return DONE_FRAME

    def on_close(self) -> None:
        """Called once the stream is over, however it ended, to account what a stream cut short left out."""
        return None  # a pass-through stream has recorded each chunk as it went


async def relay(response: UpstreamResponse, mapper: StreamMapper) -> AsyncGenerator[bytes, None]:
    """The frames ``mapper`` makes of ``response``'s events, yielded as each network read arrives.

    A body that holds no event at all (an HTML error page, a JSON error, nothing) is no stream: it raises
    the provider's failure (:func:`~relaygate.providers.errors.not_a_stream`, a 502) before any frame, so
    that the request falls back or fails instead of passing for an empty answer. When the body does not
    even claim to be an event stream, that is decided once :data:`NOT_A_STREAM_BYTES` came without an event.
    """
    decoder = SSEDecoder()
    # The body's start while no event has come: what a body that is no stream said.
    head = b""
    streaming = False
    try:
        async with aclosing(response.iter_raw()) as chunks:
            async for raw in chunks:
                events = decoder.feed(raw)
                if not streaming:
                    streaming = bool(events)
                    if not streaming:
                        head = _head(response, mapper, head + raw)
                out, ended = mapper.feed(events)
                if out:
                    yield out
                if ended:
                    # Reading the body to its end keeps the connection in the pool for the next call.
                    with anyio.move_on_after(DRAIN_TIMEOUT):
                        async for _ in chunks:
                            pass
                    return
        events = decoder.close()
        if not streaming and not events:
            raise not_a_stream(mapper.provider, _content_type(response), head)
        out, ended = mapper.feed(events)
        yield out if ended else out + mapper.finish()
    finally:
        mapper.on_close()


async def relay_native(response: UpstreamResponse, mapper: StreamMapper) -> AsyncGenerator[bytes, None]:
    """The upstream's own bytes, yielded as each read arrives, while ``mapper`` reads their events into
    canonical chunks recorded on the context (its frames are dropped): a stream in an inbound dialect the
    provider speaks itself (see :mod:`relaygate.dialects`). A body without events is no stream, as for
    :func:`relay`: its bytes are held until the first event, and a body that ends without one raises."""
    decoder = SSEDecoder()
    head = b""
    streaming = ended = False
    try:
        async with aclosing(response.iter_raw()) as chunks:
            async for raw in chunks:
                events = decoder.feed(raw)
                if not streaming:
                    streaming = bool(events)
                    if not streaming:
                        head = _head(response, mapper, head + raw)
                        continue
                    raw, head = head + raw, b""
                if not ended:
                    _, ended = mapper.feed(events)
                yield raw
        events = decoder.close()
        if not streaming and not events:
            raise not_a_stream(mapper.provider, _content_type(response), head)
        if head:
            yield head
        if not ended:
            _, ended = mapper.feed(events)
            if not ended:
                mapper.finish()
    finally:
        mapper.on_close()


def _head(response: UpstreamResponse, mapper: StreamMapper, head: bytes) -> bytes:
    """``head`` kept for the error of a body without events; raises that error once a body that does not
    say it is an event stream has sent :data:`NOT_A_STREAM_BYTES` without one."""
    if len(head) > NOT_A_STREAM_BYTES:
        content_type = _content_type(response)
        if "event-stream" not in content_type:
            raise not_a_stream(mapper.provider, content_type, head)
        return head[:NOT_A_STREAM_BYTES]
    return head


def _content_type(response: UpstreamResponse) -> str:
    return str(response.headers.get("content-type") or "")


class ChunkMapper(StreamMapper):
    """A mapper that writes ``chat.completion.chunk`` frames of its own and a usage chunk at the end."""

    def __init__(self, provider: str, ctx: RequestContext, *, usage_chunk: bool) -> None:
        super().__init__(provider, ctx, usage_chunk=usage_chunk)
        self.id = ""
        self.model = ctx.route.model if ctx.route is not None else ""
        self.created = int(time.time())
        self.usage_recorded = False

    def chunk_id(self) -> str:
        """The id every chunk carries: the upstream's, once its first event has said it."""
        return self.id

    def chunk(self, choices: list[JSON]) -> JSON:
        chunk: JSON = {
            "id": self.chunk_id(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.usage_chunk:
            chunk["usage"] = None  # as OpenAI: with include_usage, only the last chunk carries usage
        return chunk

    def emit(self, choices: list[JSON]) -> bytes:
        """The frame of a chunk holding ``choices``, recorded on the request's context."""
        return self.chunk_frame(self.chunk(choices))

    @abstractmethod
    def usage_so_far(self) -> JSON:
        """OpenAI usage for what the stream has said so far."""

    @abstractmethod
    def has_usage(self) -> bool:
        """Whether the stream has said anything that must be accounted."""

    def usage_frame(self) -> bytes:
        """Records the usage chunk; its frame if the client asked for it (``stream_options.include_usage``)."""
        # Recorded even when the client did not ask for it: the gateway accounts every stream.
        chunk = self._record_usage()
        return frame(orjson.dumps(chunk)) if self.usage_chunk else b""

    def on_close(self) -> None:
        """The usage known so far of a stream cut short (error, disconnect), so that it is still accounted."""
        if not self.usage_recorded and self.has_usage():
            self._record_usage()

    def _record_usage(self) -> JSON:
        chunk = {**self.chunk([]), "usage": self.usage_so_far()}
        self.ctx.record_chunk(chunk)
        self.usage_recorded = True
        return chunk
