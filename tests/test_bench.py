"""The benchmark runs: a smoke run with tiny phases, and the parts that cannot be seen from it.

Speed itself is never asserted here; ``./bench/run`` measures it (bench/README.md).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.layers import LAYER_OFF
from bench.load import parse_wrk

ROOT = Path(__file__).parent.parent
GATEWAY_PATHS = [
    "floor-aiohttp",
    "floor-httpx-aiohttp",
    "floor-httpx2",
    "floor-httpx",
    "relaygate-min",
    *LAYER_OFF,
    "relaygate-full",
    "relaygate-mcp",
]
STREAMED_PATHS = ["floor-aiohttp", "relaygate-min", "relaygate-full"]

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:9200/v1/chat/completions
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.52ms    1.10ms  22.37ms   91.23%
    Req/Sec     8.53k   312.45     8.90k    86.00%
  Latency Distribution
     50%  738.00us
     75%    7.71ms
     90%    8.20ms
     99%    1.20s
  42458 requests in 5.00s, 50.02MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:   8485.12
Transfer/sec:     10.00MB
"""


def test_wrk_output_is_read_with_units_and_errors() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests_per_second == pytest.approx(8485.12)
    assert result.p50 == pytest.approx(738e-6)
    assert result.p99 == pytest.approx(1.2)
    assert result.errors == 6


def test_wrk_output_without_a_rate_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no rate"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_the_benchmark_runs_every_path_and_writes_its_results(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-litellm", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "relaygate, every middleware on" in run.stdout
    results = json.loads((tmp_path / "latest.json").read_text())
    assert list(results["paths"]) == ["direct", *GATEWAY_PATHS]
    for name in ["direct", *GATEWAY_PATHS]:
        path = results["paths"][name]
        assert path["load"]["requests_per_second"] > 0, name
        assert path["load"]["errors"] == 0, name
        assert path["latency"]["p50_ms"] > 0, name
    for name in STREAMED_PATHS:
        stream, concurrent = results["paths"][name]["stream"], results["paths"][name]["concurrent"]
        # Every frame of every stream arrived, through the gateway as directly.
        assert stream["events"] == stream["direct_events"], name
        assert not math.isnan(stream["added_ttft_p50_ms"]), name
        assert not math.isnan(stream["added_ttft_unpaced_p50_ms"]), name
        assert concurrent["completed_share"] == 1.0, name
        assert concurrent["peak_rss_mib"] > 0, name
    assert set(results["adapters"]) == {"openai (pass-through)", "anthropic", "gemini"}
    assert all(figures["us_per_chunk"] > 0 for figures in results["adapters"].values())
    headroom = next(check for check in results["checks"] if check["name"] == "upstream headroom")
    assert headroom["ok"], headroom["detail"]
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "latest.md").read_text().startswith("| path |")


def test_the_script_router_micro_benchmark_runs() -> None:
    """``python -m bench.scripts --quick``: a row per case, each with a median and a 99th percentile."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.scripts", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [
        "plain provider/model (no router)",
        "seed 001's script router (named)",
        "a script reading the request and metrics",
        "the V8 call alone (ScriptEngine.run_sync, no thread hop)",
    ]
    for row in rows:
        p50, p99 = (float(cell.replace(",", "")) for cell in row.strip("| ").split(" | ")[1:])
        assert 0 <= p50 <= p99


def test_the_memory_probe_reports_the_serving_process_and_the_recorder_apart() -> None:
    """``python -m bench.memory`` with a few short streams: each process idle and at its peak, and the sum."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--streams", "20", "--chunks", "2", "--gap-ms", "10", "--warmup", "1",
         "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    memory = json.loads(done.stdout)
    assert memory["completed"] == memory["streams"] == 20
    roles = {process["role"]: process for process in memory["processes"]}
    assert set(roles) == {"serving", "recorder"}
    for process in roles.values():
        assert 0 < process["idle_mib"] <= process["peak_mib"]
    assert memory["peak_total_mib"] >= max(process["peak_mib"] for process in roles.values())


def test_the_wakeup_probe_reports_a_median_per_pause() -> None:
    """``python -m bench.wakeup``: the same call to the fake upstream after each idle pause, its median."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.wakeup", "--pauses", "0", "5", "--requests", "5", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    medians = json.loads(done.stdout)
    assert set(medians) == {"0", "5"}
    assert all(median > 0 for median in medians.values())
