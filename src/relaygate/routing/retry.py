"""Which failures are tried again, how long to wait first, and what a provider's ``Retry-After`` says.

- **Again** (the same target after a backoff, or the next target at once): 408, 409, 429, every 5xx
  (Anthropic's 529 arrives here as 503), timeouts (504) and connections that fail (502). A 429 waits its
  ``Retry-After`` first (when it is no longer than ``retry.max_retry_after``) and opens no breaker.
- **Another target only**: the provider refuses the gateway's own credentials or quota
  (``provider_auth_error``, ``insufficient_quota``), or says ``x-should-retry: false``: waiting will not
  change that target's answer, but another provider may answer.
- **Never**: anything the client caused (400, 404 of a model, 413, 422, ...), a refusal by the gateway
  or an adapter before anything was sent, and a guard's verdict. The client gets it as it is.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime

from relaygate.errors import GatewayError, UpstreamError
from relaygate.settings import RetrySettings

__all__ = ["RETRIED_STATUSES", "Verdict", "backoff", "retry_after", "verdict"]

RETRIED_STATUSES = frozenset({408, 409, 429})
# Codes that say this target will not serve the gateway however long it waits.
TARGET_REFUSALS = frozenset({"provider_auth_error", "insufficient_quota"})


class Verdict(enum.Enum):
    RETRY = "retry"  # this target again after a wait, or the next one at once
    NEXT = "next"  # another target, never this one again in this request
    STOP = "stop"  # the client gets this answer


def verdict(error: GatewayError) -> Verdict:
    if not isinstance(error, UpstreamError):
        return Verdict.STOP
    retried = error.status in RETRIED_STATUSES or error.status >= 500
    if error.code in TARGET_REFUSALS:
        return Verdict.NEXT
    if _header(error.headers, b"x-should-retry") == "false":
        return Verdict.NEXT if retried else Verdict.STOP
    return Verdict.RETRY if retried else Verdict.STOP


def retry_after(error: GatewayError, *, now: float | None = None) -> float | None:
    """Seconds the provider asked to wait (``retry-after-ms``, ``retry-after`` in seconds or as an HTTP date)."""
    millis = _header(error.headers, b"retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = _header(error.headers, b"retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff(settings: RetrySettings, failures: int, rng: random.Random) -> float:
    """The wait before a target that failed ``failures`` times is tried again: exponential, half jittered."""
    delay: float = min(settings.max_backoff, settings.backoff * 2.0 ** (failures - 1))
    return delay / 2 + rng.random() * delay / 2


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None
