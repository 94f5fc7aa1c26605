"""The dashboard's pages; each reads what it shows from the :class:`~relaygate.ui.sources.Sources`."""

from __future__ import annotations

from relaygate.ui.views.calls import call, calls
from relaygate.ui.views.common import error_page, page
from relaygate.ui.views.models import models
from relaygate.ui.views.overview import overview
from relaygate.ui.views.threads import thread, threads

__all__ = ["call", "calls", "error_page", "models", "overview", "page", "thread", "threads"]
