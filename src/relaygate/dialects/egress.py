"""What leaves a dialect's request: the inner layers' OpenAI-shaped bytes, translated once, at the edge.

:class:`Egress` wraps ``send``. It looks at each response as the inner layers finished it (after the
guards judged, redacted or refused it, after the ledger priced it) and hands it to the exchange:

- a 200 JSON answer is held until its last byte (it comes whole from the proxy anyway), parsed and
  translated (:meth:`~relaygate.dialects.base.Exchange.answer`), or passed to
  :meth:`~relaygate.dialects.base.Exchange.native_answer` when the attempt went native;
- a 200 event stream is decoded frame by frame as it comes and each event translated as it arrives
  (:class:`~relaygate.dialects.base.StreamTranslator`): nothing is held back;
- an error status (400 and up) is an OpenAI error body from :mod:`relaygate.errors`, mapped to the
  dialect's (:meth:`~relaygate.dialects.base.Exchange.error`), auth's, limits' and guards' refusals included.

The answers of a route the dialect serves itself are its own already and leave as they are (its errors
are mapped all the same).

The stream is decoded from the bytes rather than taken from the stream mapper's parsed chunks: the
bytes are exactly what a chat client would have received once every layer has had its say (guards may
hold, rewrite or stop a stream; the ledger prices the usage chunk; six places write error events), so the
dialect sees the same, with no hook in the adapters, the fallback or the guards (the fallback's check of a
stream's first frame reads those bytes too). The cost is one SSE decode and one ``orjson.loads`` per chunk:
measured at a few microseconds per chunk of a few words, about what translating it into the dialect's
events costs, and nothing beside an upstream's time per chunk.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.types import Message, Send

from relaygate.dialects.base import Exchange, StreamTranslator
from relaygate.sse import DONE, SSEDecoder, SSEEvent

__all__ = ["Egress"]

logger = logging.getLogger("relaygate.dialects")

TRANSLATION_FAILED: dict[str, Any] = {
    "message": "The gateway could not translate the answer into this API.",
    "type": "server_error",
    "param": None,
    "code": "translation_failed",
}


class Egress:
    """One request's ``send``, translating into the exchange's dialect; see the module docstring."""

    __slots__ = ("_decoder", "_ended", "_native", "_parts", "_send", "_start", "_translator", "exchange")

    def __init__(self, exchange: Exchange, send: Send) -> None:
        self.exchange = exchange
        self._send = send
        self._start: Message | None = None
        self._parts: list[bytes] = []
        self._translator: StreamTranslator | None = None
        self._decoder: SSEDecoder | None = None
        self._native = False
        self._ended = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._native = self.exchange.native and message["status"] == 200
            if message["status"] == 200 and self.exchange.calls and _is_stream(message):
                self._translator = self.exchange.stream()
                self._decoder = SSEDecoder()
                await self._send(message)
            else:
                self._start = message
            return
        if kind != "http.response.body":
            await self._send(message)
            return
        if self._translator is not None:
            await self._stream(message)
            return
        if self._start is None:
            await self._send(message)  # nothing started through here: not ours to translate
            return
        self._parts.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        start, self._start = self._start, None
        raw = b"".join(self._parts)
        self._parts = []
        status, body = await self._whole(start["status"], raw)
        headers = [(key, value) for key, value in start.get("headers", ()) if key not in (b"content-length",)]
        headers.append((b"content-length", str(len(body)).encode()))
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})

    async def _whole(self, status: int, raw: bytes) -> tuple[int, bytes]:
        try:
            if status >= 400:
                return self.exchange.error(status, _error_of(raw))
            if not self.exchange.calls:
                return status, raw  # a route the dialect served: its answer is its own already
            if self._native:
                return status, await self.exchange.native_answer(raw)
            return status, await self.exchange.answer(orjson.loads(raw))
        except Exception:
            logger.exception("dialect %s: could not translate a %d answer", self.exchange.dialect.name, status)
            return self.exchange.error(502, dict(TRANSLATION_FAILED))

    async def _stream(self, message: Message) -> None:
        assert self._translator is not None and self._decoder is not None
        data: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        out = b""
        try:
            if self._native:
                out = await self._translator.native(data, last=not more)
            else:
                for event in self._decoder.feed(data):
                    out += await self._event(self._translator, event)
                if not more:
                    for event in self._decoder.close():
                        out += await self._event(self._translator, event)
                    if not self._ended:
                        self._ended = True
                        out += await self._translator.cut()
        except Exception:
            logger.exception("dialect %s: could not translate a stream event", self.exchange.dialect.name)
            if not self._ended:
                self._ended = True
                out += await self._translator.failed(dict(TRANSLATION_FAILED))
        if out or not more:
            await self._send({"type": "http.response.body", "body": out, "more_body": more})

    async def _event(self, translator: StreamTranslator, event: SSEEvent) -> bytes:
        if self._ended:
            return b""
        if event.data == DONE:
            self._ended = True
            return await translator.done()
        payload = orjson.loads(event.data)
        if not isinstance(payload, dict):
            return b""
        if "error" in payload:
            self._ended = True
            error = payload["error"]
            return await translator.failed(error if isinstance(error, dict) else {"message": str(error)})
        return translator.chunk(payload)


def _is_stream(start: Message) -> bool:
    for key, value in start.get("headers", ()):
        if key == b"content-type":
            return bool(value.startswith(b"text/event-stream"))
    return False


def _error_of(raw: bytes) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error body (anything else becomes one)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return error
    text = raw.decode("utf-8", errors="replace")[:500]
    return {"message": text or "The request failed.", "type": "server_error", "param": None, "code": None}
