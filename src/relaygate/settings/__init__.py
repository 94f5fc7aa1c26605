"""relaygate's configuration: pydantic models of the YAML config file, one module per part.

:mod:`relaygate.settings.loading` is the only code that reads the environment (``${VAR}`` references,
the well-known provider key variables, ``OTEL_*`` and ``RELAYGATE_CONFIG``). Everything else receives
a :class:`Settings` object.
"""

from relaygate.settings.base import DEFAULT_BASE_URLS, NAME_PATTERN, ConfigError, ProviderKind
from relaygate.settings.guards import REDACTING_GUARDS, GuardOptions, GuardSettings, GuardType
from relaygate.settings.loading import (
    CONFIG_ENV_VAR,
    DEFAULT_CONFIG_FILE,
    UI_SECRET_ENV_VAR,
    load_settings,
    set_config_path,
    share_ui_session_secret,
)
from relaygate.settings.mcp import McpServerSettings, McpSettings, McpTransport
from relaygate.settings.presets import ALIASES, PRESETS, ImagesApi, Preset, configured_name, known_provider, preset
from relaygate.settings.projects import ProjectSettings
from relaygate.settings.providers import ProviderSettings, Timeouts
from relaygate.settings.root import Settings
from relaygate.settings.routing import (
    DYNAMIC_MODEL,
    FIXED_FIELDS,
    ROUTER_PREFIX,
    BreakerSettings,
    Metric,
    RetrySettings,
    RouteSettings,
    Strategy,
    Target,
    TargetSettings,
    VirtualModelSettings,
)
from relaygate.settings.service import ServerSettings, TelemetrySettings
from relaygate.settings.ui import UiSettings

__all__ = [
    "ALIASES",
    "CONFIG_ENV_VAR",
    "DEFAULT_BASE_URLS",
    "DEFAULT_CONFIG_FILE",
    "DYNAMIC_MODEL",
    "FIXED_FIELDS",
    "NAME_PATTERN",
    "PRESETS",
    "REDACTING_GUARDS",
    "ROUTER_PREFIX",
    "UI_SECRET_ENV_VAR",
    "BreakerSettings",
    "ConfigError",
    "GuardOptions",
    "GuardSettings",
    "GuardType",
    "ImagesApi",
    "McpServerSettings",
    "McpSettings",
    "McpTransport",
    "Metric",
    "Preset",
    "ProjectSettings",
    "ProviderKind",
    "ProviderSettings",
    "RetrySettings",
    "RouteSettings",
    "ServerSettings",
    "Settings",
    "Strategy",
    "Target",
    "TargetSettings",
    "TelemetrySettings",
    "Timeouts",
    "UiSettings",
    "VirtualModelSettings",
    "configured_name",
    "known_provider",
    "load_settings",
    "preset",
    "set_config_path",
    "share_ui_session_secret",
]
