"""The gateway's pure-ASGI middlewares; each is usable alone around any ASGI app."""

from __future__ import annotations

from relaygate.middleware.auth import AuthMiddleware
from relaygate.middleware.guards import GuardsMiddleware
from relaygate.middleware.ledger import LedgerMiddleware
from relaygate.middleware.limits import LimitsMiddleware
from relaygate.middleware.projects import ProjectScopeMiddleware
from relaygate.middleware.tracing import TracingMiddleware

__all__ = [
    "AuthMiddleware",
    "GuardsMiddleware",
    "LedgerMiddleware",
    "LimitsMiddleware",
    "ProjectScopeMiddleware",
    "TracingMiddleware",
]
