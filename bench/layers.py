"""The benchmark's paths that switch one layer of the full stack off, to show what that layer costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Config = dict[str, Any]


def _no_ledger(config: Config) -> None:
    config["database"] = None


def _no_guards(config: Config) -> None:
    config.pop("guards", None)
    for project in config.get("projects", ()):
        project.pop("guards", None)


# Path name: (the layer, how it changes the config of "relaygate, every middleware on"). Tracing is switched
# off in the environment (OTEL_SDK_DISABLED), as a user would.
LAYER_OFF: dict[str, tuple[str, Callable[[Config], None]]] = {
    "relaygate-notrace": ("tracing", lambda config: None),
    "relaygate-noledger": ("ledger", _no_ledger),
    "relaygate-noguards": ("regex and pii guards", _no_guards),
}
