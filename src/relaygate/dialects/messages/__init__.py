"""Anthropic's Messages API inbound: ``/v1/messages`` in front of every provider.

``POST /v1/messages`` is translated into the canonical chat call (:mod:`.request`, :mod:`.content`),
served by every middleware and adapter as a chat call, and its answer, stream and errors translated back
(:mod:`.answer`, :mod:`.stream`); an Anthropic provider gets the caller's own bytes, the model name aside
(:mod:`.native`). ``POST /v1/messages/count_tokens`` is answered by Anthropic or estimated (:mod:`.count`),
and ``GET /v1/models`` asked with ``anthropic-version`` lists the models in Anthropic's shape (:mod:`.models`).

The relaygate key may come as ``x-api-key`` (the anthropic SDKs and Claude Code send it there) or as
``Authorization: Bearer`` (``ANTHROPIC_AUTH_TOKEN``); ``Authorization`` wins when both are sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.types import Scope

from relaygate.context import get_context
from relaygate.dialects.base import Dialect, DialectRoute
from relaygate.dialects.messages.exchange import MessagesExchange
from relaygate.dialects.messages.shapes import (
    AnthropicError,
    CountTokensRequest,
    Message,
    MessageCreateRequest,
    MessageStreamEvent,
    TokenCount,
)
from relaygate.errors import GatewayError
from relaygate.providers.anthropic.mapping import OVERLOADED_STATUS
from relaygate.routes import Route

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.routing import ModelRouter

__all__ = ["MessagesDialect", "MessagesExchange"]

ANTHROPIC_VERSION = b"anthropic-version"
_KEYS = (
    "The relaygate key goes in `x-api-key` (as the anthropic SDKs and Claude Code send it) or in "
    "`Authorization: Bearer`; `anthropic-version` and `anthropic-beta` are accepted (the beta header reaches "
    'Anthropic). Errors are Anthropic\'s `{"type": "error", "error": {"type", "message"}}`.'
)
CREATE = Route(
    "POST",
    "/v1/messages",
    "createMessage",
    "Create a message (Anthropic's Messages API)",
    "Messages API",
    description=(
        "Anthropic's Messages API in front of every provider: passed as it came (the model name aside) to an "
        "Anthropic provider, translated into a chat call for any other (and its answer, stream and errors back). "
        'With `"stream": true` the answer is Anthropic\'s event stream. ' + _KEYS
    ),
    body=MessageCreateRequest,
    answer=Message,
    streams=MessageStreamEvent,
    model_call=True,
    errors=(OVERLOADED_STATUS,),
    error_body=AnthropicError,
    examples={"text": {"model": "mock/echo", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello"}]}},
)
COUNT_TOKENS = Route(
    "POST",
    "/v1/messages/count_tokens",
    "countMessageTokens",
    "Count a message's input tokens",
    "Messages API",
    description=(
        "Exact from an Anthropic provider (its own count_tokens; `x-relaygate-token-count: exact`), an estimate "
        'otherwise (`x-relaygate-token-count: estimate` and `"estimated": true`). ' + _KEYS
    ),
    body=CountTokensRequest,
    answer=TokenCount,
    errors=(404, 503),
    error_body=AnthropicError,
    examples={"text": {"model": "mock/echo", "messages": [{"role": "user", "content": "Hello"}]}},
)


class MessagesDialect(Dialect):
    """The Messages API. ``router`` routes count_tokens as a call; ``model_entries`` lists the models."""

    name: ClassVar[str] = "messages"
    routes: ClassVar[tuple[DialectRoute, ...]] = (
        DialectRoute("POST", "/v1/messages", canonical="/v1/chat/completions", name="create", doc=CREATE),
        DialectRoute("POST", "/v1/messages/count_tokens", name="count_tokens", doc=COUNT_TOKENS),
        # The proxy's model list, in Anthropic's shape for the anthropic SDKs (documented with the proxy's).
        DialectRoute("GET", "/v1/models", name="models", header=ANTHROPIC_VERSION),
        DialectRoute("GET", r"/v1/models/(?P<id>.{1,256})", name="model", header=ANTHROPIC_VERSION),
    )

    def __init__(
        self,
        *,
        router: ModelRouter,
        model_entries: Callable[[RequestContext], Awaitable[list[dict[str, Any]]]],
        max_body_bytes: int,
    ) -> None:
        self.router = router
        self.model_entries = model_entries
        self.max_body_bytes = max_body_bytes

    def exchange(self, ctx: RequestContext, route: DialectRoute, params: dict[str, str]) -> MessagesExchange:
        return MessagesExchange(self, ctx, route, params)

    def prepare(self, scope: Scope) -> Scope:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        exchange = get_context(scope).dialect
        if isinstance(exchange, MessagesExchange):
            exchange.headers = dict(headers)
        key = next((value for name, value in headers if name == b"x-api-key"), None)
        if key is None or any(name == b"authorization" for name, _ in headers):
            return scope
        return {**scope, "headers": [*headers, (b"authorization", b"Bearer " + key)]}

    def anthropic_only(self, model: str, body: dict[str, Any]) -> bool:
        """Whether every target a request for ``model`` may reach is an Anthropic provider: then the canonical
        request keeps what only the Anthropic adapter reads (``cache_control``, ``top_k``)."""
        try:
            targets = self.router.reachable(model, body)
        except GatewayError:
            return False
        return all(target.route.provider.kind == "anthropic" for target in targets)
