"""Inbound APIs besides Chat Completions, as translators at the edge of the one canonical call.

See :mod:`relaygate.dialects.base` for what a dialect implements and
:class:`~relaygate.dialects.middleware.DialectMiddleware` for where it sits in the stack.
"""

from __future__ import annotations

from relaygate.dialects.base import Dialect, DialectRoute, Exchange, NativeRequest, StreamTranslator, sse_event
from relaygate.dialects.middleware import DialectMiddleware, DialectRoutes

__all__ = [
    "Dialect",
    "DialectMiddleware",
    "DialectRoute",
    "DialectRoutes",
    "Exchange",
    "NativeRequest",
    "StreamTranslator",
    "sse_event",
]
