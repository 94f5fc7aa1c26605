"""Bring your own key: a caller's own provider key for one request, in ``LB-LLM-Key`` or ``X-Provider-Key``."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate._asgi import model_call
from relaygate.context import CallerKey, get_context
from relaygate.errors import PermissionDeniedError, send_error

__all__ = ["CALLER_KEY_HEADERS", "ProviderKeyMiddleware"]

# Langbase's name for the header, and relaygate's own.
CALLER_KEY_HEADERS = (b"lb-llm-key", b"x-provider-key")


class ProviderKeyMiddleware:
    """Right inside auth: takes the caller's own provider key off the request and onto the context.

    The key is read from ``LB-LLM-Key`` (Langbase's Images API names it so) or ``X-Provider-Key`` and the
    headers are removed from the request, so that no later layer (a routing condition on a header, say)
    sees them. On a model call (chat, embeddings, images, and every dialect's call through them) of a
    project that ``allows`` it (``byok: true``), the key becomes ``ctx.caller_key``: the provider is called
    with it instead of the configured key (:meth:`~relaygate.providers.base.Provider.keyed`), a preset
    provider serves it when none of that name is configured, and the ledger records the key's fingerprint.
    A project that does not allow it gets a 403 ``byok_not_allowed``. On any other route the key is dropped.

    Whatever happens to the request, the key is one of its secrets from the start (``ctx.add_secret``):
    scrubbed from the provider errors it relays, its spans and its log lines, even when a provider echoes it.
    """

    def __init__(self, app: ASGIApp, *, allows: Callable[[str | None], bool]) -> None:
        """``allows(project_id)``: whether the project accepts callers' own keys."""
        self.app = app
        self.allows = allows

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = [value.decode("latin-1").strip() for name, value in scope["headers"] if name in CALLER_KEY_HEADERS]
        keys = [key for key in sent if key]
        if not sent:
            await self.app(scope, receive, send)
            return
        ctx = get_context(scope)
        # Every value sent is secret, the ones not used too.
        ctx.add_secret(*keys)
        scope = {**scope, "headers": [(n, v) for n, v in scope["headers"] if n not in CALLER_KEY_HEADERS]}
        if not keys:
            await self.app(scope, receive, send)  # an empty header: no key
            return
        if model_call(scope) is not None:
            if not self.allows(ctx.project_id):
                error = PermissionDeniedError(
                    f"Project '{ctx.project_id}' does not accept callers' own provider keys (LB-LLM-Key, "
                    "X-Provider-Key): send the request without one, or set byok: true on the project.",
                    param="LB-LLM-Key",
                    code="byok_not_allowed",
                )
                await send_error(send, error)
                return
            ctx.caller_key = CallerKey(keys[0])
        await self.app(scope, receive, send)
