"""Every model call priced and recorded: :class:`LedgerMiddleware`."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate._asgi import model_call
from relaygate.context import get_context
from relaygate.ledger import COST_HEADER, Ledger

__all__ = ["LedgerMiddleware"]


class LedgerMiddleware:
    """Records every model call that got past auth, with its cost, in the :class:`~relaygate.ledger.Ledger`.

    Sits inside :class:`~relaygate.middleware.auth.AuthMiddleware` (so the project and key are known) and
    outside limits and guards (so their refusals are recorded too). Whole answers carry what they cost in
    ``X-Cost-Usd`` and ``usage.cost``; streams in their usage chunk (``stream_options.include_usage``).
    The record is queued when the call has ended, however it ended; the database is written off the
    request's path. Until the ledger has started (a mounted gateway whose lifespan the host did not run)
    calls pass through unrecorded.
    """

    def __init__(self, app: ASGIApp, *, ledger: Ledger) -> None:
        self.app = app
        self.ledger = ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = model_call(scope)
        if endpoint is None or not self.ledger.running:
            await self.app(scope, receive, send)
            return
        ctx = get_context(scope)
        call = self.ledger.begin(ctx)
        status = 0

        async def send_with_cost(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                cost = call.total(ctx)
                if cost is not None:
                    message["headers"] = [*message.get("headers", ()), (COST_HEADER, _usd(cost))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_cost)
        except BaseException:
            status = status or 500
            raise
        finally:
            self.ledger.finish(ctx, call, status=status or 499, endpoint=endpoint)


def _usd(cost: float) -> bytes:
    # Plain decimal notation (0.000125, never 1.25e-04): costs are rounded to nano-dollars.
    return (f"{cost:.9f}".rstrip("0").rstrip(".") or "0").encode()
