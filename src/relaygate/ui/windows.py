"""The period a dashboard page shows: the management API's named periods back from now, or given dates.

``period=last_day`` is the window ``[now - 1 day, now)``, exactly as ``POST /analytics/summary`` with
``{"period": "last_day"}`` reads it, so the overview's totals are the API's. ``from``/``to`` (ISO dates or
``datetime-local`` values, in UTC) give any other window. Buckets are hours or days; hours only up to a week
(a longer series would be drawn from thousands of points).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relaygate.store import Bucket

__all__ = ["PERIODS", "Window", "WindowError", "parse_time", "window_of"]

PERIODS: dict[str, tuple[str, timedelta]] = {
    "last_hour": ("Last hour", timedelta(hours=1)),
    "last_day": ("Last 24 hours", timedelta(days=1)),
    "last_week": ("Last 7 days", timedelta(days=7)),
    "last_month": ("Last 30 days", timedelta(days=30)),
    "last_year": ("Last 365 days", timedelta(days=365)),
}
DEFAULT_PERIOD = "last_day"
MAX_HOURLY = timedelta(days=7)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


class WindowError(ValueError):
    """A period the dashboard cannot show; the message says why, for the page."""


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    bucket: Bucket
    period: str  # a name of PERIODS, or "custom"

    @property
    def label(self) -> str:
        if self.period in PERIODS:
            return PERIODS[self.period][0]
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"

    @property
    def start_us(self) -> int:
        return _us(self.start)

    @property
    def end_us(self) -> int:
        return _us(self.end)


def _us(when: datetime) -> int:
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_time(text: str, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WindowError(f"'{name}' must be a date or a date and time (2025-06-01 or 2025-06-01T12:00)") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if not EARLIEST <= when <= LATEST:
        raise WindowError(f"'{name}' is out of range")
    return when


def window_of(query: Mapping[str, str], now: datetime | None = None) -> Window:
    """The window of a page's query (``period``, ``from``, ``to``, ``bucket``); raises :class:`WindowError`."""
    now = now or datetime.now(UTC)
    start_text, end_text = query.get("from", "").strip(), query.get("to", "").strip()
    period = query.get("period") or (DEFAULT_PERIOD if not (start_text or end_text) else "custom")
    if period in PERIODS:
        start, end = now - PERIODS[period][1], now
    elif period == "custom":
        end = parse_time(end_text, "to") if end_text else now
        if end_text and len(end_text) == 10:  # a date alone: up to the end of that day
            end += timedelta(days=1)
        start = parse_time(start_text, "from") if start_text else end - PERIODS[DEFAULT_PERIOD][1]
        if start >= end:
            raise WindowError("'from' must be before 'to'")
    else:
        raise WindowError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)} or give from/to")
    wanted = query.get("bucket") or ""
    if wanted not in ("", "hour", "day"):
        raise WindowError("'bucket' is hour or day")
    span = end - start
    bucket = Bucket(wanted) if wanted else Bucket.HOUR if span <= timedelta(days=2) else Bucket.DAY
    if bucket is Bucket.HOUR and span > MAX_HOURLY:
        bucket = Bucket.DAY
    return Window(start, end, bucket, period)
