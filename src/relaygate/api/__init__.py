"""The management API (threads, analytics, usage, prices, the model registry); see :mod:`relaygate.api.app`."""

from __future__ import annotations

from relaygate.api.app import ApiApp

__all__ = ["ApiApp"]
