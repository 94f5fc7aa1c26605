"""relaygate: an OpenAI-compatible AI gateway built from composable pure-ASGI middlewares."""

from __future__ import annotations

from relaygate.context import RequestContext, ResponseObserver, Usage, get_context
from relaygate.errors import GatewayError
from relaygate.gateway import Gateway
from relaygate.middleware import AuthMiddleware, GuardsMiddleware, ProjectScopeMiddleware, TracingMiddleware
from relaygate.proxy import ProxyApp
from relaygate.settings import ConfigError, Settings, load_settings

__all__ = [
    "AuthMiddleware",
    "ConfigError",
    "Gateway",
    "GatewayError",
    "GuardsMiddleware",
    "ProjectScopeMiddleware",
    "ProxyApp",
    "RequestContext",
    "ResponseObserver",
    "Settings",
    "TracingMiddleware",
    "Usage",
    "get_context",
    "load_settings",
]

__version__ = "0.1.0"
