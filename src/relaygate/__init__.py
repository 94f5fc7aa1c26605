"""relaygate: an OpenAI-compatible AI gateway built from composable pure-ASGI middlewares.

The names below are imported when first used (PEP 562), so that a part of relaygate imported on its own
(the recorder process imports only the store and the span exporter) does not import the whole gateway.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES = {
    "RequestContext": "relaygate.context",
    "ResponseObserver": "relaygate.context",
    "Usage": "relaygate.context",
    "get_context": "relaygate.context",
    "GatewayError": "relaygate.errors",
    "Gateway": "relaygate.gateway",
    "AuthMiddleware": "relaygate.middleware",
    "GuardsMiddleware": "relaygate.middleware",
    "ProjectScopeMiddleware": "relaygate.middleware",
    "TracingMiddleware": "relaygate.middleware",
    "ProxyApp": "relaygate.proxy",
    "ConfigError": "relaygate.settings",
    "Settings": "relaygate.settings",
    "load_settings": "relaygate.settings",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'relaygate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
