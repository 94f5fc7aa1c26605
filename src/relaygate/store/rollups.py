"""What the dashboard reads from the ledger: roll-up rows, the calls list's filters and cursors, percentiles.

A window ``[start, end)`` is read from the roll-ups (``_rollup_sql.py``) where it covers whole buckets (of an
hour, a day, a week or four weeks) and from the calls themselves at its ragged edges (:func:`segments`), so
its figures are exactly those of the calls that started in it, as :meth:`~relaygate.store.Store.usage_total`
counts them, whatever the window. When nothing started at or after its end (a window up to now), its end is
first moved up to a bucket's (:func:`extend`): its last part is then that bucket's roll-up row so far.
Latencies are kept as a histogram of two significant digits (:func:`latency_bin`); :func:`percentile`
reads p50 and p95 from it, within the width of a bin (under 10%).
"""

from __future__ import annotations

import base64
import binascii
import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from relaygate.store.records import Figures, utc

__all__ = [
    "CallCursor",
    "CallFilter",
    "Dimension",
    "RollupRow",
    "Segment",
    "ThreadCursor",
    "extend",
    "latency_bin",
    "percentile",
    "segments",
]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)
# Four weeks from a Monday: the coarsest roll-ups, so that a long window (a year: 13 of them) reads a user's
# figures from a dozen rows rather than fifty.
FOUR_WEEKS = timedelta(weeks=4)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Weeks start on Monday (ISO), as the store's week buckets do; 1970-01-05 was one.
MONDAY = datetime(1970, 1, 5, tzinfo=UTC)


class Dimension(enum.StrEnum):
    """What roll-up rows are grouped by. ``model`` is ``provider/model``; ``latency`` is the histogram: a row per
    latency bin (:func:`latency_bin`), whose figures are the number of its calls (its other figures are not
    summed: a histogram is read for its counts, and a long series has thousands of bins)."""

    ALL = "all"
    PROVIDER = "provider"
    MODEL = "model"
    USER = "user"
    LABEL = "label"
    KEY = "key"
    LATENCY = "latency"


@dataclass(frozen=True, slots=True)
class RollupRow:
    """Figures of one bucket (``None`` when not bucketed) and one value of the dimension (``None``: no value)."""

    bucket_start: datetime | None
    value: str | None
    figures: Figures


@dataclass(frozen=True, slots=True)
class Segment:
    """A part of a window read one way: ``calls`` (the rows themselves), or the ``hour`` or ``day`` roll-ups."""

    source: str
    start: datetime
    end: datetime


def _floor(when: datetime, size: timedelta) -> datetime:
    origin = MONDAY if size in (WEEK, FOUR_WEEKS) else EPOCH
    return origin + ((when - origin) // size) * size


def _ceil(when: datetime, size: timedelta) -> datetime:
    floor = _floor(when, size)
    return floor if floor == when else floor + size


def segments(start: datetime, end: datetime, *, coarsest: timedelta = WEEK) -> list[Segment]:
    """``[start, end)`` cut into the calls at its ragged edges, then whole hours, whole days and whole weeks
    (Monday to Monday), each as coarse as ``coarsest`` allows: a long window is read from a few weekly rows
    in the middle and finer ones toward its edges."""
    start, end = utc(start, "start"), utc(end, "end")
    if start >= end:
        return []
    spans = ((HOUR, "hour"), (DAY, "day"), (WEEK, "week"), (FOUR_WEEKS, "4week"))
    sizes = [(size, name) for size, name in spans if size <= coarsest]
    left: list[Segment] = []
    right: list[Segment] = []
    low, high, source = start, end, "calls"
    for size, name in sizes:
        inner_low, inner_high = _ceil(low, size), _floor(high, size)
        if inner_low >= inner_high:
            break
        if low < inner_low:
            left.append(Segment(source, low, inner_low))
        if inner_high < high:
            right.append(Segment(source, inner_high, high))
        low, high, source = inner_low, inner_high, name
    return [*left, Segment(source, low, high), *reversed(right)]


def extend(end: datetime, size: timedelta) -> datetime:
    """``end`` moved up to the next bucket boundary of ``size`` (weeks from Monday), or itself if on one."""
    return _ceil(end, size)


def bucket_of(when: datetime, size: timedelta) -> datetime:
    return _floor(when, size)


def _lead(two_digits: int) -> int:
    # Bins of at most 10%: one per value of the first two digits up to 19, every 2 up to 49, every 5 above.
    if two_digits < 20:
        return two_digits
    return two_digits - two_digits % (2 if two_digits < 50 else 5)


def latency_bin(latency_us: int) -> str:
    """The histogram bin of a latency: its number of digits and the bin of its first two digits (``"6:12"``:
    120 to 130 ms, ``"6:25"``: 250 to 300 ms); mirrored by the SQL of ``_rollup_sql.py``."""
    text = str(int(latency_us))
    return f"{len(text)}:{_lead(int(text[:2]))}"


def _bin_range(value: str) -> tuple[float, float]:
    digits, _, lead_text = value.partition(":")
    lead = int(lead_text)
    if int(digits) < 2:
        return lead, lead + 1
    width = 1 if lead < 20 else 2 if lead < 50 else 5
    scale = 10 ** (int(digits) - 2)
    return lead * scale, (lead + width) * scale


def percentile(histogram: Iterable[tuple[str, int]], fraction: float) -> float | None:
    """The ``fraction`` quantile (0.5: the median) of a latency histogram of (bin, count), in milliseconds.

    Linear within the bin that holds it; ``None`` for an empty histogram.
    """
    bins = sorted((_bin_range(value), count) for value, count in histogram if count > 0)
    total = sum(count for _, count in bins)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for (low, high), count in bins:
        if seen + count >= rank:
            inside = (rank - seen) / count
            return (low + (high - low) * inside) / 1000
        seen += count
    (_, high), _ = bins[-1]
    return high / 1000


@dataclass(frozen=True, slots=True)
class CallFilter:
    """The calls list's filters; ``None`` is no filter. ``status`` is ``"ok"``, ``"error"`` or an HTTP status.

    ``model`` is ``provider/model`` as routed; ``start``/``end`` bound ``started_at`` (``[start, end)``).
    """

    model: str | None = None
    status: str | None = None
    user: str | None = None
    thread: str | None = None
    label: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallCursor:
    """Where a page of calls ends: the list goes on with calls older than this one."""

    started_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        delta = self.started_at - EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return f"{micros}.{self.id.hex}"

    @classmethod
    def decode(cls, text: str) -> CallCursor:
        """Raises :class:`ValueError` for anything :meth:`encode` did not make."""
        micros, dot, hex_id = text.partition(".")
        if not dot or not micros.isdigit() or len(micros) > 17:
            raise ValueError(f"not a cursor: {text!r}")
        return cls(EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id))


@dataclass(frozen=True, slots=True)
class ThreadCursor:
    """Where a page of threads ends: the list goes on with threads last active before this one."""

    last_seen: datetime
    project_id: str
    thread_id: str

    def encode(self) -> str:
        micros = (self.last_seen - EPOCH) // timedelta(microseconds=1)
        raw = orjson.dumps([micros, self.project_id, self.thread_id])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> ThreadCursor:
        """Raises :class:`ValueError` for anything :meth:`encode` did not make."""
        try:
            micros, project_id, thread_id = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ValueError(f"not a cursor: {text!r}") from exc
        if not (isinstance(micros, int) and isinstance(project_id, str) and isinstance(thread_id, str)):
            raise ValueError(f"not a cursor: {text!r}")
        try:
            return cls(EPOCH + timedelta(microseconds=micros), project_id, thread_id)
        except OverflowError as exc:
            raise ValueError(f"not a cursor: {text!r}") from exc
