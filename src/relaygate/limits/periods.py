"""The periods of budgets: the UTC day, the UTC month, and all time."""

from __future__ import annotations

import functools
from dataclasses import dataclass
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

    @property
    def endless(self) -> bool:
        return self.end == FOREVER

    def ttl(self, now: float) -> float:
        """How long the period's counter is kept from ``now``."""
        return GRACE if self.endless else max(self.end.timestamp() - now, 0.0) + GRACE

    def left(self, now: float) -> float:
        """Seconds until the period ends (a day for all time, which never does)."""
        return GRACE if self.endless else max(self.end.timestamp() - now, 1.0)


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
