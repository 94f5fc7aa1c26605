"""The dashboard at ``/ui``: usage, cost, calls, threads, models and prices; see :mod:`relaygate.ui.app`."""

from __future__ import annotations

from relaygate.ui.app import UiApp

__all__ = ["UiApp"]
