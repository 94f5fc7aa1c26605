"""Guards on what goes to a model and what comes back."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate._asgi import model_call, read_json_body
from relaygate.context import RequestContext, get_context
from relaygate.errors import ClientDisconnected, GatewayError, send_error
from relaygate.guards import Guard, Guards, StreamGuards
from relaygate.guards.text import answer_texts, request_texts
from relaygate.requests import user_of
from relaygate.route_headers import ROUTE_HEADERS
from relaygate.telemetry import Telemetry

__all__ = ["GuardsMiddleware"]


class GuardsMiddleware:
    """Runs a request's guards: input guards before the app, output guards on its answer.

    Sits directly around the proxy. The guards of a request are its project's defaults and those
    named in ``extra.guards`` (:meth:`~relaygate.guards.Guards.select`); a request naming an unknown
    guard is refused with a 400. Input guards see the texts of chat messages, embedding inputs and
    image prompts; a redacting guard rewrites the parsed body on the context (``ctx.body``), which is
    what the proxy sends. Output guards judge chat answers:

    - a whole answer is held with its ``http.response.start`` until judged; a redaction rewrites the
      body and its content-length, a refusal replaces it with an error response;
    - a stream gets ``ctx.output_filter`` (:class:`~relaygate.guards.StreamGuards`), which the stream
      mapper hands each parsed chunk, and guards that judge the whole answer run when it is over. If
      one of those blocks, the whole stream is held until then, so that a refusal is still a real
      HTTP error; otherwise the stream flows and a violation ends it with a ``content_filter`` chunk
      and an error event.

    Violations are ``guard_violation`` errors (400, or ``guard_options.violation_status``); a guard
    that cannot judge refuses the call with a ``guard_error`` (500, 502 when its model failed), unless
    it only observes. Every result goes to ``ctx.guard_results`` and, with ``telemetry``, onto the
    request's span.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        guards: Guards,
        max_body_bytes: int = 32 * 1024 * 1024,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.app = app
        self.guards = guards
        self.max_body_bytes = max_body_bytes
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = model_call(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        ctx = get_context(scope)
        try:
            # Read and parsed once: the proxy takes the body from the context.
            body = await read_json_body(scope, receive, self.max_body_bytes)
            # Noted before the input guards: a call they refuse is recorded (with what its judges cost) under
            # its user, whose budgets reload that spend from the ledger.
            ctx.user = ctx.user or user_of(body)
            selection = self.guards.select(ctx.project_id, _requested(body))
            if selection.input:
                await self._input(selection.input, endpoint, body, ctx)
        except ClientDisconnected:
            ctx.error = "client_disconnected"
            return
        except GatewayError as error:
            ctx.status, ctx.error = error.status, error.code or error.type
            self._trace(ctx)
            await send_error(send, error)
            return
        if not selection:
            await self.app(scope, receive, send)
            return
        outputs = selection.output if endpoint == "chat" else ()
        if outputs:
            # They judge (and may rewrite) the canonical answer: no native pass-through of a dialect's request.
            ctx.canonical_only = True
        traced = False

        async def send_traced(message: Message) -> None:
            nonlocal traced
            # Before the last byte: a host's server span may end with it, and results told later are lost.
            if not traced and message["type"] == "http.response.body" and not message.get("more_body", False):
                traced = True
                self._trace(ctx)
            await send(message)

        try:
            if not outputs:
                await self.app(scope, receive, send_traced)
            elif body.get("stream") is True:
                await self._stream(scope, receive, send_traced, ctx, StreamGuards(self.guards, outputs))
            else:
                await self._whole(scope, receive, send_traced, ctx, outputs)
        finally:
            if not traced:
                self._trace(ctx)

    async def _input(self, guards: tuple[Guard, ...], endpoint: str, body: dict[str, Any], ctx: RequestContext) -> None:
        texts = request_texts(endpoint, body)
        redacted = await self.guards.run(guards, texts.strings, ctx, on_redact=texts.redact)
        if redacted is not texts.strings:
            texts.write()
            # What goes upstream is the redacted canonical request, not a dialect's own body.
            ctx.canonical_only = True

    async def _whole(
        self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext, guards: tuple[Guard, ...]
    ) -> None:
        answer = _Answer()
        ctx.observers.append(answer)
        start: Message | None = None
        parts: list[bytes] = []
        passing = False
        refused: GatewayError | None = None

        async def send_judged(message: Message) -> None:
            nonlocal start, passing, refused
            if passing:
                await send(message)
            elif message["type"] == "http.response.start":
                # Errors pass as they are; a success waits for the verdict on its body.
                passing = message["status"] != 200
                if passing:
                    await send(message)
                else:
                    start = message
            elif message["type"] == "http.response.body" and start is not None:
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                try:
                    body = await self._judge_answer(answer.body, guards, ctx)
                except GatewayError as error:
                    refused = error
                    ctx.error = error.code or error.type
                    ctx.answer_refusal = error.message
                    await send_error(send, error, _route_headers(start))
                    return
                if body is None:
                    await send(start)
                    await send({"type": "http.response.body", "body": b"".join(parts)})
                else:
                    headers = [(key, value) for key, value in start["headers"] if key != b"content-length"]
                    headers.append((b"content-length", str(len(body)).encode()))
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        await self.app(scope, receive, send_judged)
        if refused is not None:
            ctx.status = refused.status

    async def _judge_answer(
        self, answer: dict[str, Any] | None, guards: tuple[Guard, ...], ctx: RequestContext
    ) -> bytes | None:
        """The answer's new body when a guard redacted it, ``None`` to send it as it came."""
        if answer is None:
            return None
        texts = answer_texts(answer)
        if not texts:
            return None  # tool calls only: no text to judge
        judged = texts.strings
        redacted = await self.guards.run(guards, judged, ctx, on_redact=texts.redact)
        if redacted is judged or redacted == judged:
            return None
        texts.write()
        ctx.answer_redacted = _first_text(answer)
        return orjson.dumps(answer)

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext, stream: StreamGuards
    ) -> None:
        ctx.output_filter = stream
        held: list[Message] = []
        passing = False
        finished = False
        refused: GatewayError | None = None

        async def send_guarded(message: Message) -> None:
            nonlocal passing, finished, refused
            if passing or message["type"] not in ("http.response.start", "http.response.body"):
                await send(message)
            elif message["type"] == "http.response.start":
                passing = message["status"] != 200
                if stream.holds and not passing:
                    held.append(message)
                else:
                    await send(message)
            elif message.get("more_body", False):
                if stream.holds:
                    held.append(message)
                else:
                    await send(message)
            else:
                # The stream's last message: the guards that judge the whole answer speak now, before
                # the proxy records the end, so that the results are on the context when it does.
                finished = True
                error = await stream.finish(ctx)
                if error is not None:
                    # Stopped, or refused whole: the answer's text the client may have seen is not kept.
                    ctx.answer_refusal = error.message
                if stream.holds:
                    if error is not None:
                        refused = error
                        ctx.error = error.code or error.type
                        await send_error(send, error, _route_headers(held[0]))
                        return
                    for earlier in held:
                        await send(earlier)
                await send(message)

        try:
            await self.app(scope, receive, send_guarded)
        finally:
            if not finished and stream.choices:
                # Cut short (the client left): what the stream guards saw is still recorded.
                ctx.guard_results.extend(stream.stage_results())
        if refused is not None:
            ctx.status = refused.status

    def _trace(self, ctx: RequestContext) -> None:
        if self.telemetry is not None and ctx.guard_results:
            self.telemetry.record_guards(ctx)


class _Answer:
    """Keeps the parsed answer the provider recorded, so that output guards need not parse it again."""

    __slots__ = ("body",)

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None

    def on_response(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        self.body = body

    def on_chunk(self, ctx: RequestContext, chunk: dict[str, Any]) -> None:
        return None

    def on_end(self, ctx: RequestContext) -> None:
        return None


def _first_text(answer: dict[str, Any]) -> str | None:
    choices = answer.get("choices") or ()
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


def _route_headers(start: Message) -> list[tuple[bytes, bytes]]:
    """The routing headers of the held answer: a refusal still says which target answered."""
    return [(key, value) for key, value in start["headers"] if key in ROUTE_HEADERS]


def _requested(body: dict[str, Any]) -> Any:
    extra = body.get("extra")
    return extra.get("guards") if isinstance(extra, dict) else None
