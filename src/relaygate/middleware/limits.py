"""Rate limits and budgets around every model call: :class:`LimitsMiddleware`."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate._asgi import model_call, read_json_body
from relaygate.context import get_context
from relaygate.errors import ClientDisconnected, GatewayError, send_error
from relaygate.limits.limiter import Limiter

__all__ = ["LimitsMiddleware"]


class LimitsMiddleware:
    """Holds model calls to the rate limits and budgets of the :class:`~relaygate.limits.limiter.Limiter`.

    Before a call it reads the body (kept on the context, so the layers inside do not read it again), and
    reserves the call's worst case on every limit that applies; if any would be passed it answers 429
    (``rate_limit_exceeded`` or ``insufficient_quota``) with ``Retry-After``, and the call goes no further.
    After the call, when the app inside has returned (a stream has ended, however it ended), it settles
    the reservation to what the call used, shielded from cancellation so that a client leaving cannot skip
    it. Answers to limited calls carry OpenAI's ``x-ratelimit-*`` headers.

    Sits inside :class:`~relaygate.middleware.ledger.LedgerMiddleware`, which records its refusals and prices
    the calls it settles, and outside the guards and the proxy. Only model calls are limited.
    """

    def __init__(self, app: ASGIApp, *, limiter: Limiter, max_body_bytes: int = 32 * 1024 * 1024) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = model_call(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        ctx = get_context(scope)
        try:
            body = await read_json_body(scope, receive, self.max_body_bytes)
            admission = await self.limiter.admit(ctx, endpoint, body, headers=scope["headers"])
        except ClientDisconnected:
            ctx.error = "client_disconnected"
            return
        except GatewayError as error:
            ctx.error = error.code or error.type
            await send_error(send, error)
            return
        if admission is None:
            await self.app(scope, receive, send)
            return
        headers = admission.headers
        # A tool loop settles each of its model calls and reserves the next here (relaygate.mcp.loop): what is
        # left to settle at the end is the last one's.
        ctx.admission = admission

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start" and headers:
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            # None once a tool loop settled its last model call itself. In-process counters settle in one
            # synchronous step, which a cancellation cannot interrupt.
            current = ctx.admission if ctx.admission is not None else None
            if current is not None and not self.limiter.settle_now(current, ctx):
                with anyio.CancelScope(shield=True):
                    await self.limiter.settle(current, ctx)
