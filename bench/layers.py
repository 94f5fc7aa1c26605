"""The benchmark's paths that switch one layer of the full stack off, to show what that layer costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Config = dict[str, Any]


def _no_ledger(config: Config) -> None:
    config["database"] = None
    # Budgets are counted against the ledger and cannot be had without it; the rate limits stay.
    for project in config.get("projects", ()):
        limits = project.get("limits") or {}
        for budget in ("usd_per_day", "usd_per_month", "usd_total"):
            limits.pop(budget, None)


def _no_guards(config: Config) -> None:
    config.pop("guards", None)
    for project in config.get("projects", ()):
        project.pop("guards", None)


def _no_limits(config: Config) -> None:
    for project in config.get("projects", ()):
        project.pop("limits", None)


# Path name: (the layer, how it changes the config of "relaygate, every middleware on"). Tracing is switched
# off in the environment (OTEL_SDK_DISABLED), as a user would.
LAYER_OFF: dict[str, tuple[str, Callable[[Config], None]]] = {
    "relaygate-notrace": ("tracing", lambda config: None),
    "relaygate-noledger": ("ledger", _no_ledger),
    "relaygate-noguards": ("regex and pii guards", _no_guards),
    "relaygate-nolimits": ("limits", _no_limits),
}
