"""The dashboard's benchmark runs on both backends: a smoke run on a small ledger that names each page's
heaviest query and every query's figures. Speed itself is never asserted here (bench/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from bench.dashboard import main
from tests.databases import drop_schemas, new_schema

PAGES = ["overview", "budgets", "calls", "threads", "thread", "call"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_dashboard_benchmark_reports_each_pages_heaviest_query(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    args = ["--calls", "1500", "--backend", backend, "--repeat", "1", "--out", str(tmp_path)]
    schema = new_schema()
    if backend == "sqlite":
        args += ["--sqlite", str(tmp_path / "ledger.db")]
    else:
        args += ["--postgres", request.getfixturevalue("postgres_url"), "--schema", schema]
    try:
        main(args)  # its exit status says whether the goal was met: not asserted
    finally:
        if backend == "postgres":
            anyio.run(drop_schemas, schema)
    [result] = json.loads((tmp_path / "dashboard-latest.json").read_text())
    assert result["backend"] == backend and result["calls"] == 1500
    assert list(result["heaviest_by_page"])[: len(PAGES)] == PAGES
    assert all(h["query"].startswith(page) for page, h in result["heaviest_by_page"].items())
    budgets = [q for q in result["queries"] if q.startswith("budgets: ")]
    assert len(budgets) == 15
    report = (tmp_path / "dashboard-latest.md").read_text()
    assert f"**{backend}: the heaviest query is" in report and "Each page's heaviest query" in report
    for page in PAGES:
        assert f"| {page} | " in report
