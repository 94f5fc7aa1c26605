"""Every query the dashboard's pages make, as they make them, grouped by page, for ``bench/dashboard.py``.

- overview: its two reads (the window's totals with every breakdown and the latency histogram, then its
  series with p50/p95 per bucket) for each period the page offers, for the biggest project and for all of
  them (the admin's view), and each breakdown alone; and the budgets it shows, as read from the ledger when
  the limiter's counter is not loaded yet (the first view after a start);
- calls: the list with each filter, a page deep in the list, the filter form's choices;
- call, threads, thread: as their pages read them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from bench.ledger_seed import PROJECTS
from relaygate.limits.periods import Period, period_of
from relaygate.store import CallCursor, CallFilter, Dimension, SpendKind, SpendScope, Store, ThreadCursor
from relaygate.ui.views.calls import CHOICES_WINDOW
from relaygate.ui.windows import PERIODS, window_of

__all__ = ["ALL", "MAIN", "Query", "budget_queries", "list_queries", "overview_queries", "reference_queries"]

MAIN = PROJECTS[0][0]
ALL = [p for p, _ in PROJECTS]

Query = Callable[[], Awaitable[Any]]
# (page, what, the query)
Queries = list[tuple[str, str, Query]]

OVERVIEW_DIMS = [Dimension.ALL, Dimension.LATENCY, Dimension.MODEL, Dimension.PROVIDER]
OVERVIEW_DIMS += [Dimension.USER, Dimension.LABEL, Dimension.KEY]


def overview_queries(store: Store, projects: list[str], who: str, now: datetime) -> Queries:
    """The overview page's two reads for each of its periods, and each breakdown on its own."""
    out: Queries = []
    for period in PERIODS:
        win = window_of({"period": period}, now)
        name = f"{who} {period}"

        def q(dims: list[Dimension], bucketed: bool = False, s: datetime = win.start, b: Any = win.bucket) -> Query:
            return lambda: store.rollups(projects, s, now, dims, b if bucketed else None)

        out.append(("overview", f"{name}: totals, p50/p95 and every breakdown (1st read)", q(OVERVIEW_DIMS)))
        out.append(
            ("overview", f"{name}: series and p50/p95 by {win.bucket.value} (2nd read)", q(OVERVIEW_DIMS[:2], True))
        )
        for dim in OVERVIEW_DIMS[2:]:
            out.append(("overview", f"{name}: by {dim.value} alone", q([dim])))
    return out


def budget_queries(store: Store, now: datetime) -> Queries:
    """What each budget has used, as the overview reads it from the ledger before the limiter has counted."""
    day, month, total = (period_of(name, now.timestamp()) for name in ("usd_per_day", "usd_per_month", "usd_total"))
    scopes = [
        ("the project", SpendScope(SpendKind.PROJECT, MAIN)),
        ("a key", SpendScope(SpendKind.KEY, "key_n00000000003", MAIN)),
        ("the busiest user", SpendScope(SpendKind.USER, "user-0", MAIN)),
        ("a model", SpendScope(SpendKind.MODEL, "gpt-4o", MAIN, provider="openai")),
        ("the project, without callers' own keys", SpendScope(SpendKind.PROJECT, MAIN, caller_keys=False)),
    ]

    def spent(scope: SpendScope, period: Period) -> Query:
        return lambda: store.spend(scope, period.start, period.end)

    return [("budgets", f"{what}: spent in {p.label}", spent(s, p)) for what, s in scopes for p in (day, month, total)]


async def list_queries(store: Store, now: datetime) -> Queries:
    recent = await store.recent_calls([MAIN], limit=200)
    thread = next(c.thread_id for c in recent if c.thread_id)
    call = recent[-1]
    old = now - timedelta(days=60)
    deep_thread = ThreadCursor(old, MAIN, "")
    hour_later = now - timedelta(days=3) + timedelta(hours=1)

    def calls(
        f: CallFilter | None = None, projects: list[str] | None = None, before: CallCursor | None = None
    ) -> Query:
        return lambda: store.recent_calls(projects or [MAIN], f or CallFilter(), limit=51, before=before)

    def choices(projects: list[str]) -> Query:
        return lambda: store.rollups(projects, now - CHOICES_WINDOW, now, [Dimension.MODEL, Dimension.LABEL])

    async def thread_page() -> None:
        await store.thread_cost(MAIN, thread)
        await store.thread_messages(MAIN, thread, limit=500)
        await store.recent_calls([MAIN], CallFilter(thread=thread), limit=500)

    rare = "gemini/gemini-2.0-flash"
    return [
        ("calls", "newest", calls()),
        ("calls", "all projects, newest", calls(projects=ALL)),
        ("calls", "model openai/gpt-4o", calls(CallFilter(model="openai/gpt-4o"))),
        ("calls", f"a rare model ({rare})", calls(CallFilter(model=rare))),
        ("calls", "all projects, a rare model", calls(CallFilter(model=rare), ALL)),
        ("calls", "failed", calls(CallFilter(status="error"))),
        ("calls", "status 429", calls(CallFilter(status="429"))),
        ("calls", "succeeded", calls(CallFilter(status="ok"))),
        ("calls", "the busiest user", calls(CallFilter(user="user-0"))),
        ("calls", "a rare user", calls(CallFilter(user="user-1999"))),
        ("calls", "a label", calls(CallFilter(label="label-3"))),
        ("calls", "a thread", calls(CallFilter(thread=thread))),
        ("calls", "one hour, 3 days ago", calls(CallFilter(start=now - timedelta(days=3), end=hour_later))),
        ("calls", "rare user and model", calls(CallFilter(user="user-1500", model="openai/gpt-4o"))),
        ("calls", "failed, a rare user", calls(CallFilter(user="user-1999", status="error"))),
        ("calls", "a page 60 days deep", calls(before=CallCursor(old, call.id))),
        ("calls", "the filter form's models and labels (30 days)", choices([MAIN])),
        ("calls", "all projects, the filter form's models and labels", choices(ALL)),
        ("threads", "newest", lambda: store.recent_threads([MAIN], limit=51)),
        ("threads", "all projects, newest", lambda: store.recent_threads(ALL, limit=51)),
        ("threads", "a page 60 days deep", lambda: store.recent_threads([MAIN], limit=51, before=deep_thread)),
        ("thread", "cost, messages, calls", thread_page),
        ("call", "the call", lambda: store.find_call(ALL, call.id)),
        ("every page", "projects in the ledger (the admin's project menu)", store.ledger_projects),
    ]


def reference_queries(store: Store, now: datetime) -> Queries:
    """The management API's reads of the same figures, for comparison (not the dashboard's)."""
    month = now - timedelta(days=30)
    return [
        ("API", "usage_total last_month (scans the calls)", lambda: store.usage_total(MAIN, month, now)),
        ("API", "list_threads offset 0", lambda: store.list_threads(MAIN, limit=20)),
        ("API", "list_threads offset 10000", lambda: store.list_threads(MAIN, limit=20, offset=10_000)),
    ]
