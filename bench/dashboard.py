"""The dashboard's queries on a ledger of 1,000,000 calls, on SQLite and on PostgreSQL.

``./bench/dashboard`` (or ``python -m bench.dashboard``) seeds the ledger (``bench/ledger_seed.py``: 90 days,
three projects, the biggest with 80% of the calls) through the store's write path, then times every query
the dashboard's pages make, as they make them: the overview's totals, series, latency histogram and five
breakdowns over each period it offers, for the biggest project and for all projects (the admin's view); the
calls list with each filter, a page deep in the list; the threads list; a thread; a call. Each query runs
once to warm up, then ``--repeat`` times; the median and the slowest run are reported, in milliseconds, and
the heaviest query's median is the figure the issue names (goal: under 200 ms). The whole overview page
(every query and the rendering) is timed too, through the gateway itself.

Options: ``--calls N`` (1,000,000), ``--backend sqlite|postgres|both``, ``--sqlite PATH`` (a file kept for a
rerun with ``--reuse``), ``--postgres URL`` (the schema ``bench_dashboard`` is used and kept for ``--reuse``),
``--repeat N``, ``--out DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.ledger_seed import PROJECTS, seed
from relaygate import Gateway
from relaygate.settings import ProjectSettings, Settings
from relaygate.store import Bucket, CallCursor, CallFilter, Dimension, Store, ThreadCursor, open_store

RESULTS = Path(__file__).parent / "results"
GOAL_MS = 200.0
MAIN = PROJECTS[0][0]
ALL = [p for p, _ in PROJECTS]
PERIODS = {"last_day": 1, "last_week": 7, "last_month": 30, "last_90_days": 90}
ADMIN_KEY = "rg-bench-dashboard-admin"

Query = Callable[[], Awaitable[Any]]


OVERVIEW_DIMS = [Dimension.ALL, Dimension.LATENCY, Dimension.MODEL, Dimension.PROVIDER]
OVERVIEW_DIMS += [Dimension.USER, Dimension.LABEL, Dimension.KEY]


def overview_queries(store: Store, projects: list[str], who: str, now: datetime) -> list[tuple[str, Query]]:
    """The overview page's two reads for each period, and each dimension on its own."""
    out: list[tuple[str, Query]] = []
    for period, days in PERIODS.items():
        start = now - timedelta(days=days)
        bucket = Bucket.HOUR if days <= 2 else Bucket.DAY
        name = f"overview {who} {period}"

        def q(dims: list[Dimension], b: Bucket | None = None, s: datetime = start) -> Query:
            return lambda: store.rollups(projects, s, now, dims, b)

        out.append((f"{name}: totals and every breakdown (the page's 1st read)", q(OVERVIEW_DIMS)))
        out.append((f"{name}: series and p50/p95 by {bucket.value} (2nd read)", q(OVERVIEW_DIMS[:2], bucket)))
        for dim in OVERVIEW_DIMS[2:]:
            out.append((f"{name}: by {dim.value} alone", q([dim])))
    return out


async def list_queries(store: Store, now: datetime) -> list[tuple[str, Query]]:
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

    async def thread_page() -> None:
        await store.thread_cost(MAIN, thread)
        await store.thread_messages(MAIN, thread, limit=500)
        await store.recent_calls([MAIN], CallFilter(thread=thread), limit=500)

    return [
        ("calls: newest", calls()),
        ("calls: all projects, newest", calls(projects=ALL)),
        ("calls: model openai/gpt-4o", calls(CallFilter(model="openai/gpt-4o"))),
        ("calls: a rare model (gemini/gemini-2.0-flash)", calls(CallFilter(model="gemini/gemini-2.0-flash"))),
        ("calls: all projects, a rare model", calls(CallFilter(model="gemini/gemini-2.0-flash"), ALL)),
        ("calls: failed", calls(CallFilter(status="error"))),
        ("calls: status 429", calls(CallFilter(status="429"))),
        ("calls: succeeded", calls(CallFilter(status="ok"))),
        ("calls: the busiest user", calls(CallFilter(user="user-0"))),
        ("calls: a rare user", calls(CallFilter(user="user-1999"))),
        ("calls: a label", calls(CallFilter(label="label-3"))),
        ("calls: a thread", calls(CallFilter(thread=thread))),
        (
            "calls: one hour, 3 days ago",
            calls(CallFilter(start=now - timedelta(days=3), end=hour_later)),
        ),
        ("calls: rare user and model", calls(CallFilter(user="user-1500", model="openai/gpt-4o"))),
        ("calls: a page 60 days deep", calls(before=CallCursor(old, call.id))),
        ("threads: newest", lambda: store.recent_threads([MAIN], limit=51)),
        ("threads: all projects, newest", lambda: store.recent_threads(ALL, limit=51)),
        ("threads: a page 60 days deep", lambda: store.recent_threads([MAIN], limit=51, before=deep_thread)),
        ("thread page: cost, messages, calls", thread_page),
        ("call page: the call", lambda: store.find_call(ALL, call.id)),
        ("projects in the ledger", store.ledger_projects),
    ]


def reference_queries(store: Store, now: datetime) -> list[tuple[str, Query]]:
    month = now - timedelta(days=30)
    return [
        ("API usage_total last_month (scans the calls)", lambda: store.usage_total(MAIN, month, now)),
        ("API list_threads offset 0", lambda: store.list_threads(MAIN, limit=20)),
        ("API list_threads offset 10000", lambda: store.list_threads(MAIN, limit=20, offset=10_000)),
    ]


async def timed(query: Query, repeat: int) -> tuple[float, float]:
    await query()
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        await query()
        runs.append((time.perf_counter() - began) * 1000)
    return statistics.median(runs), max(runs)


async def overview_page(url: str, repeat: int) -> dict[str, tuple[float, float]]:
    settings = Settings(
        database=url, admin_key=ADMIN_KEY, projects=[ProjectSettings(id=p, keys=[f"rg-bench-{p}"]) for p in ALL]
    )
    gateway = Gateway(settings)
    out: dict[str, tuple[float, float]] = {}
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as http:
            form = await http.get("/ui/login")
            token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed = await http.post("/ui/login", data={"csrf": token, "key": ADMIN_KEY})
            assert signed.status_code == 303, signed.text
            for period in ("last_day", "last_month"):
                for project in (MAIN, ""):

                    async def page(period: str = period, project: str = project) -> None:
                        response = await http.get("/ui/", params={"period": period, "project": project})
                        assert response.status_code == 200, response.text[-500:]

                    who = project or "all projects"
                    out[f"page: overview {who} {period} (every query, rendered)"] = await timed(
                        page, max(3, repeat // 2)
                    )
    return out


async def run_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    store = open_store(url)
    result: dict[str, Any] = {"backend": name, "calls": args.calls}
    async with store:
        existing = await store.rollup(ALL, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
        stored = existing[0].figures.calls if existing else 0
        if not (args.reuse and stored == args.calls):
            if stored:
                raise SystemExit(f"{name}: the ledger at {url} already holds {stored} calls; start from an empty one")
            print(f"{name}: seeding {args.calls:,} calls…", flush=True)
            result["write_rate"] = await seed(store, args.calls, datetime.now(UTC))
            print(f"{name}: seeded at {result['write_rate']:,.0f} calls/s", flush=True)
        if name == "postgres":
            # What autovacuum does on a live server after a load this size: planner statistics.
            await store._fetch("ANALYZE", [])  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        queries = [
            *overview_queries(store, [MAIN], MAIN, now),
            *overview_queries(store, ALL, "all projects", now),
            *await list_queries(store, now),
        ]
        figures: dict[str, tuple[float, float]] = {}
        for label, query in queries:
            figures[label] = await timed(query, args.repeat)
            print(f"{name}: {label}: {figures[label][0]:.1f} ms", flush=True)
        references = {label: await timed(q, max(1, args.repeat // 2)) for label, q in reference_queries(store, now)}
    result["queries"] = figures
    result["references"] = references
    result["pages"] = await overview_page(url, args.repeat)
    heaviest = max(figures, key=lambda k: figures[k][0])
    result["heaviest"] = {"query": heaviest, "median_ms": figures[heaviest][0], "max_ms": figures[heaviest][1]}
    return result


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        f"# Dashboard queries on a ledger of {results[0]['calls']:,} calls",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end, "
        f"Python {platform.python_version()}.",
        "",
    ]
    for r in results:
        h = r["heaviest"]
        verdict = "under" if h["median_ms"] < GOAL_MS else "OVER"
        lines.append(
            f'**{r["backend"]}: the heaviest query is "{h["query"]}": {h["median_ms"]:.1f} ms median '
            f"({h['max_ms']:.1f} ms slowest run), {verdict} the {GOAL_MS:.0f} ms goal.**"
        )
        if "write_rate" in r:
            lines.append(f"Seeded through the store's write path at {r['write_rate']:,.0f} calls/s.")
        lines.append("")
    names = list(results[0]["queries"]) + list(results[0]["pages"]) + list(results[0]["references"])
    lines.append(
        "| query | " + " | ".join(f"{r['backend']} median ms | {r['backend']} slowest ms" for r in results) + " |"
    )
    lines.append("| --- |" + " --- | --- |" * len(results))
    for label in names:
        cells = []
        for r in results:
            median, slowest = r["queries"].get(label) or r["pages"].get(label) or r["references"].get(label)
            cells.append(f"{median:.1f} | {slowest:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sqlite", default=str(Path(__file__).parent / ".dashboard-ledger.db"))
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--reuse", action="store_true", help="keep a ledger already seeded with --calls calls")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    backends = []
    if args.backend in ("sqlite", "both"):
        if not args.reuse and os.path.exists(args.sqlite):
            for suffix in ("", "-wal", "-shm"):
                Path(args.sqlite + suffix).unlink(missing_ok=True)
        backends.append(("sqlite", f"sqlite:///{args.sqlite}"))
    if args.backend in ("postgres", "both"):
        if not args.reuse:
            anyio.run(_drop_schema, args.postgres)
        backends.append(("postgres", f"{args.postgres}?schema=bench_dashboard"))
    results = [anyio.run(run_backend, name, url, args) for name, url in backends]
    text = report(results)
    print("\n" + text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dashboard-latest.md").write_text(text)
    (out / "dashboard-latest.json").write_text(json.dumps(results, indent=2))
    return 0 if all(r["heaviest"]["median_ms"] < GOAL_MS for r in results) else 1


async def _drop_schema(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS bench_dashboard CASCADE")
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
