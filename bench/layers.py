"""The benchmark's paths that switch one layer of the full stack off, to show what that layer costs."""

from __future__ import annotations

from typing import Any

# Path name: (the layer, what the config of "relaygate, every middleware on" changes for it). Tracing is
# switched off in the environment (OTEL_SDK_DISABLED), as a user would.
LAYER_OFF: dict[str, tuple[str, dict[str, Any]]] = {
    "relaygate-notrace": ("tracing", {}),
    "relaygate-noledger": ("ledger", {"database": None}),
}
