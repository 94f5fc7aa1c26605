"""The response headers that say where a request was routed: the target that answered and how many
attempts it took. Set by the proxy on answers, kept by the guards on the refusals they put in an answer's place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relaygate.context import RequestContext

__all__ = ["ROUTE_HEADERS", "route_headers"]

ROUTE_HEADERS = frozenset({b"x-model-name", b"x-provider-name", b"x-relaygate-attempts"})


def route_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """``X-Model-Name`` and ``X-Provider-Name`` of the target that answered (or gave the error, or whose
    breaker did), and ``X-Relaygate-Attempts``."""
    headers = [(b"x-relaygate-attempts", str(len(ctx.attempts)).encode())]
    if ctx.route is not None:
        headers[:0] = [
            (b"x-model-name", ctx.route.model.encode()),
            (b"x-provider-name", ctx.route.provider.name.encode()),
        ]
    return headers
