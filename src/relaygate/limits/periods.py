"""The periods of budgets: the UTC day, the UTC month, and all time."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["BUDGET_PERIODS", "Period", "period_of"]

# A budget's counter outlives its period by a day, so that a call that started in the period and settles
# after it (a long stream at midnight) still finds it; a usd_total counter lives a day past its last use.
GRACE = 86_400.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FOREVER = datetime(9999, 1, 1, tzinfo=UTC)

BUDGET_PERIODS = {"usd_per_day": "day", "usd_per_month": "month", "usd_total": "total"}


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start: datetime
    end: datetime  # exclusive
    # The end in seconds since the epoch (None for all time), worked out once: every call asks for the ttl.
    end_seconds: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "end_seconds", None if self.end == FOREVER else self.end.timestamp())

    @property
    def endless(self) -> bool:
        return self.end_seconds is None

    def ttl(self, now: float) -> float:
        """How long the period's counter is kept from ``now``."""
        end = self.end_seconds
        return GRACE if end is None else max(end - now, 0.0) + GRACE

    def left(self, now: float) -> float:
        """Seconds until the period ends (a day for all time, which never does)."""
        end = self.end_seconds
        return GRACE if end is None else max(end - now, 1.0)


def period_of(limit: str, now: float) -> Period:
    """The period of budget ``limit`` (``usd_per_day``, ``usd_per_month``, ``usd_total``) that holds ``now``."""
    # Every call asks; the answer changes once a day at most.
    return _period(BUDGET_PERIODS[limit], int(now // 86_400))


@functools.lru_cache(maxsize=16)
def _period(kind: str, day: int) -> Period:
    moment = EPOCH + timedelta(days=day)
    if kind == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
        return Period(start.strftime("%Y-%m-%d"), start, end)
    if kind == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return Period(start.strftime("%Y-%m"), start, end)
    return Period("total", EPOCH, FOREVER)
