"""Native pass-through: an Anthropic provider gets the caller's request as it came.

``POST {base_url}/messages`` carries the caller's bytes with only the top-level ``model`` value replaced
by the provider's model name (:func:`~.splice.splice`; the gateway's own ``extra`` and ``router`` are
taken out too, as Anthropic refuses them), so that thinking blocks and their signatures, ``cache_control``,
server tools and every field the gateway does not know reach Anthropic untouched. The caller's
``anthropic-beta`` header goes along; the provider's own key and ``anthropic-version`` are used.

The ledger, limits and spans still learn the canonical answer, read by the Anthropic adapter's own code:
:func:`~relaygate.providers.anthropic.responses.chat_completion` for a whole message,
:class:`~relaygate.providers.anthropic.stream.AnthropicStream` for a stream's events.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from relaygate.dialects.base import NativeRequest
from relaygate.dialects.messages.splice import splice
from relaygate.providers.anthropic.responses import chat_completion
from relaygate.providers.anthropic.stream import AnthropicStream
from relaygate.providers.base import Provider, json_answer
from relaygate.requests import GATEWAY_FIELDS

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.dialects.messages.exchange import MessagesExchange

__all__ = ["FORWARDED_HEADERS", "native_body", "native_headers", "native_request"]

# The caller's headers that reach a native Anthropic provider.
FORWARDED_HEADERS = (b"anthropic-beta",)
# The gateway's fields Anthropic does not know: taken out of a native body (Anthropic has mcp_servers of its own).
GATEWAY_ONLY = frozenset(GATEWAY_FIELDS - {"mcp_servers"})


def native_request(exchange: MessagesExchange, provider: Provider, model: str) -> NativeRequest | None:
    """The request for ``provider`` when it is an Anthropic one; else ``None``."""
    if provider.kind != "anthropic":
        return None
    body = {key: value for key, value in exchange.request.items() if key not in GATEWAY_ONLY}
    body["model"] = model
    name = provider.name

    def answer(raw: bytes, ctx: RequestContext) -> bytes:
        answer = json_answer(raw, name)
        ctx.record_response(chat_completion(answer, created=int(time.time())))
        exchange.note_id(str(answer.get("id") or ""))
        return raw

    def mapper(ctx: RequestContext) -> AnthropicStream:
        return AnthropicStream(name, ctx, usage_chunk=False, json_mode=False)

    content = native_body(exchange.raw, exchange.request, model)
    return NativeRequest("/messages", body, answer, mapper, native_headers(exchange.headers), content)


def native_body(raw: bytes, request: Mapping[str, Any], model: str) -> bytes:
    """The caller's bytes with the model replaced and the gateway's own fields taken out."""
    return splice(raw, replace={"model": model}, drop=[key for key in GATEWAY_ONLY if key in request])


def native_headers(headers: Mapping[bytes, bytes]) -> dict[str, str]:
    return {name.decode(): headers[name].decode("latin-1") for name in FORWARDED_HEADERS if name in headers}
