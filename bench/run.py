"""One benchmark run: every path against the same fake upstream, in one go, into one table.

Paths: direct to the fake upstream; bare pass-throughs on each candidate upstream client (the floor);
relaygate's proxy with no middleware; relaygate with every middleware on, served by ``relaygate
serve``; LiteLLM's proxy. Figures: req/s and p99 at 64 connections, added p50/p99 at one connection
(interleaved rounds against direct), added time to first streamed chunk and added gap between chunks,
and 1,000 concurrent streams (share completed, peak RSS of the gateway's processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench import adapters, report
from bench.layers import LAYER_OFF
from bench.load import (
    StreamTimer,
    Target,
    Throughput,
    concurrent_streams,
    latency_round,
    median,
    percentile,
    python_load,
    wrk_available,
    wrk_load,
)
from bench.procs import LOAD_CORE, RssSampler, Server, free_port, pin_self, start_fake_upstream, start_server
from bench.upstream import JSON_MODEL, TOOL_MODEL, stream_model

BENCH_DIR = Path(__file__).parent
RESULTS = BENCH_DIR / "results"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Phases:
    latency_rounds: int = 5
    latency_requests: int = 300
    latency_seconds: float = 1.0
    connections: int = 64
    load_seconds: float = 3.0
    load_rounds: int = 3
    warmup_seconds: float = 1.0
    stream_pairs: int = 30
    stream_chunks: int = 8
    stream_gap_ms: int = 5
    concurrent: int = 1000
    concurrent_chunks: int = 10
    concurrent_gap_ms: int = 200
    concurrent_timeout: float = 60.0
    adapter_chunks: int = 2000
    adapter_repeats: int = 5


QUICK = Phases(
    latency_rounds=2,
    latency_requests=30,
    latency_seconds=0.2,
    load_seconds=0.5,
    load_rounds=1,
    warmup_seconds=0.0,
    stream_pairs=2,
    stream_chunks=4,
    stream_gap_ms=5,
    concurrent=50,
    concurrent_chunks=3,
    concurrent_gap_ms=50,
    concurrent_timeout=20.0,
    adapter_chunks=100,
    adapter_repeats=1,
)


@dataclass(frozen=True)
class PathSpec:
    name: str
    label: str
    # Streams and 1,000 concurrent streams are measured on the main paths; the other client floors
    # only need what decides the choice of client.
    streams: bool
    start: Callable[[str, Path], tuple[Server, dict[str, str]]]
    # What the path is sent (latency and throughput), when not the plain chat call of every other path.
    body: bytes | None = None


def _chat(model: str, *, stream: bool = False, **extra: Any) -> bytes:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Say something long."}]}
    if stream:
        body["stream"] = True
    return orjson.dumps({**body, **extra})


# A chat call that makes one MCP tool loop: a model call that calls bench__ping, the tool call, a model call.
TOOL_LOOP_BODY = _chat(TOOL_MODEL, mcp_servers=[{"name": "bench"}])


def _floor(client: str) -> Callable[[str, Path], tuple[Server, dict[str, str]]]:
    def start(upstream: str, work: Path) -> tuple[Server, dict[str, str]]:
        port = free_port()
        command = [sys.executable, "-m", "bench.serve", f"floor-{client}", "--upstream", upstream, "--port", str(port)]
        return start_server(f"floor-{client}", command, port=port, cwd=str(BENCH_DIR.parent)), {}

    return start


# How relaygate's own paths are started: bench.instructions runs them under callgrind (slower to start).
GATEWAY_PYTHON: list[str] = [sys.executable]
GATEWAY_START_TIMEOUT = 60.0


def _relaygate_min(upstream: str, work: Path) -> tuple[Server, dict[str, str]]:
    port = free_port()
    command = [*GATEWAY_PYTHON, "-m", "bench.serve", "relaygate-min", "--upstream", upstream, "--port", str(port)]
    return start_server(
        "relaygate-min", command, port=port, cwd=str(BENCH_DIR.parent), timeout=GATEWAY_START_TIMEOUT
    ), {}


def _relaygate_mcp(upstream: str, work: Path) -> tuple[Server, dict[str, str]]:
    port = free_port()
    command = [sys.executable, "-m", "bench.serve", "relaygate-mcp", "--upstream", upstream, "--port", str(port)]
    return start_server("relaygate-mcp", command, port=port, cwd=str(BENCH_DIR.parent)), {}


# USD per 1M tokens of the fake upstream's models (gpt-4o-mini's), priced for the budgets of the full stack.
BENCH_PRICE = {"input": 0.15, "output": 0.60}


def _relaygate_full(
    phases: Phases, name: str = "relaygate-full"
) -> Callable[[str, Path], tuple[Server, dict[str, str]]]:
    def start(upstream: str, work: Path) -> tuple[Server, dict[str, str]]:
        # Spans go through the batch processor and the OTLP/HTTP exporter to the fake upstream,
        # which accepts exports; with tracing off, OpenTelemetry is disabled as a user would.
        telemetry = (
            {"OTEL_SDK_DISABLED": "true"}
            if name == "relaygate-notrace"
            else {"OTEL_EXPORTER_OTLP_ENDPOINT": upstream.removesuffix("/v1"), "OTEL_SERVICE_NAME": "relaygate-bench"}
        )
        config = yaml.safe_load((BENCH_DIR / "relaygate-full.yaml").read_text())
        config["database"] = f"sqlite:///{work / (name + '.db')}"
        # The fake upstream's models get a price, so that the budgets reserve and settle real amounts.
        models = [
            JSON_MODEL,
            *{
                stream_model(phases.stream_chunks, phases.stream_gap_ms),
                stream_model(phases.stream_chunks, 0),
                stream_model(phases.concurrent_chunks, phases.concurrent_gap_ms),
            },
        ]
        config["prices"] = {f"up/{model}": BENCH_PRICE for model in models}
        if name in LAYER_OFF:
            LAYER_OFF[name][1](config)
        workers = 1
        if name.startswith("relaygate-pg-"):
            config["database"], config["counters"] = SCALED_CONFIG["database"], SCALED_CONFIG["counters"]
            workers = SCALED_CONFIG["workers"]
            config.setdefault("server", {})["workers"] = workers
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return _start_full(upstream, telemetry, name, path, workers=workers)

    return start


def _scaled(phases: Phases, workers: int) -> Callable[[str, Path], tuple[Server, dict[str, str]]]:
    """The full stack on PostgreSQL (the ledger) and Redis (the limits' counters), served by ``workers`` processes."""
    full = _relaygate_full(phases, f"relaygate-pg-{workers}w")

    def start(upstream: str, work: Path) -> tuple[Server, dict[str, str]]:
        schema = f"bench_{secrets.token_hex(4)}"
        SCALED_CONFIG.update(
            database=f"{os.environ.get('BENCH_POSTGRES', POSTGRES)}?schema={schema}",
            counters=f"{os.environ.get('BENCH_REDIS', REDIS)}?prefix=relaygate-bench-{schema}",
            workers=workers,
        )
        return full(upstream, work)

    return start


# Where the scale-out paths keep their ledger and counters (BENCH_POSTGRES, BENCH_REDIS override them).
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
SCALED_CONFIG: dict[str, Any] = {}


def _start_full(
    upstream: str, telemetry: dict[str, str], name: str, config: Path, *, workers: int = 1
) -> tuple[Server, dict[str, str]]:
    port = free_port()
    key = "rg-" + secrets.token_urlsafe(24)
    env = {"BENCH_UPSTREAM": upstream, "BENCH_KEY": key, "BENCH_ADMIN_KEY": "rg-" + secrets.token_urlsafe(24)}
    env.update(telemetry)
    command = [*GATEWAY_PYTHON, "-m", "relaygate.cli", "serve", "--config", str(config)]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    headers = {
        "authorization": f"Bearer {key}",
        "x-project-id": "bench",
        "x-thread-id": "2f6e1f5c-8a0e-4d7c-9d55-3f1f2b7e9a10",
        "x-run-id": "bench-run",
        "x-label": "bench",
    }
    unset = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"]
    # Two workers get both cores (on a 2-core machine the load generator shares one of them with a worker).
    count = os.cpu_count() or 1
    cores = (set(range(count)) - ({LOAD_CORE} if count > 2 else set())) if workers > 1 else None
    server = start_server(
        name, command, port=port, env=env, unset=unset, cwd=str(BENCH_DIR.parent), cores=cores,
        timeout=GATEWAY_START_TIMEOUT,
    )  # fmt: skip
    return server, headers


def _litellm(version: str, phases: Phases) -> Callable[[str, Path], tuple[Server, dict[str, str]]]:
    def start(upstream: str, work: Path) -> tuple[Server, dict[str, str]]:
        from bench.litellm import start_litellm

        models = [
            JSON_MODEL,
            stream_model(phases.stream_chunks, phases.stream_gap_ms),
            stream_model(phases.stream_chunks, 0),
            stream_model(phases.concurrent_chunks, phases.concurrent_gap_ms),
        ]
        server, master_key = start_litellm(upstream, models, work)
        return server, {"authorization": f"Bearer {master_key}"}

    return start


def paths(*, litellm: str | None, clients: bool, phases: Phases, scale_out: bool = False) -> list[PathSpec]:
    specs = [PathSpec("floor-aiohttp", "bare pass-through, aiohttp (the floor)", True, _floor("aiohttp"))]
    if clients:
        specs += [
            PathSpec(
                "floor-httpx-aiohttp", "bare pass-through, httpx + AiohttpTransport", False, _floor("httpx-aiohttp")
            ),
            PathSpec("floor-httpx2", "bare pass-through, httpx2", False, _floor("httpx2")),
            PathSpec("floor-httpx", "bare pass-through, stock httpx", False, _floor("httpx")),
        ]
    specs += [
        PathSpec("relaygate-min", "relaygate, proxy only", True, _relaygate_min),
        *(
            PathSpec(name, f"relaygate, every middleware on, {layer} off", False, _relaygate_full(phases, name))
            for name, (layer, _) in LAYER_OFF.items()
        ),
        PathSpec("relaygate-full", "relaygate, every middleware on", True, _relaygate_full(phases)),
        PathSpec(
            "relaygate-mcp",
            "relaygate, proxy only, a one-tool MCP loop (2 model calls + 1 tool call)",
            False,
            _relaygate_mcp,
            body=TOOL_LOOP_BODY,
        ),
    ]
    if scale_out:
        specs += [
            PathSpec(f"relaygate-pg-{n}w", f"relaygate, every middleware on, PostgreSQL and Redis, {n} worker(s)",
                     False, _scaled(phases, n))
            for n in (1, 2)
        ]  # fmt: skip
    if litellm:
        specs.append(PathSpec("litellm", f"LiteLLM proxy {litellm} (1 worker, no DB)", True, _litellm(litellm, phases)))
    return specs


def _latency(direct: Target, target: Target, body: bytes, phases: Phases) -> dict[str, float]:
    rounds: list[tuple[float, float, float, float]] = []
    for _ in range(phases.latency_rounds):
        base = latency_round(direct, body, requests=phases.latency_requests, max_seconds=phases.latency_seconds)
        mine = latency_round(target, body, requests=phases.latency_requests, max_seconds=phases.latency_seconds)
        rounds.append((percentile(base, 50), percentile(base, 99), percentile(mine, 50), percentile(mine, 99)))
    return {
        "p50_ms": median([r[2] for r in rounds]) * 1e3,
        "p99_ms": median([r[3] for r in rounds]) * 1e3,
        "direct_p50_ms": median([r[0] for r in rounds]) * 1e3,
        "added_p50_ms": median([r[2] - r[0] for r in rounds]) * 1e3,
        "added_p99_ms": median([r[3] - r[1] for r in rounds]) * 1e3,
    }


def _streams(direct: Target, target: Target, phases: Phases) -> dict[str, Any]:
    body = _chat(stream_model(phases.stream_chunks, phases.stream_gap_ms), stream=True)
    base_ttft, mine_ttft, base_gaps, mine_gaps = [], [], [], []
    base_events, mine_events = set(), set()
    base_timer, mine_timer = StreamTimer(direct), StreamTimer(target)
    for _ in range(phases.stream_pairs):
        base = base_timer.stream(body, chunks=phases.stream_chunks)
        mine = mine_timer.stream(body, chunks=phases.stream_chunks)
        base_ttft.append(base.ttft)
        mine_ttft.append(mine.ttft)
        base_gaps += base.gaps
        mine_gaps += mine.gaps
        base_events.add(base.events)
        mine_events.add(mine.events)
    # The same streams with no pause between chunks, back to back: no core idles, so this is what the path's
    # software adds to the first chunk. With pauses, the cores idle and waking one costs each hop of a path once
    # more than the direct call (python -m bench.wakeup measures it on the machine).
    unpaced = _chat(stream_model(phases.stream_chunks, 0), stream=True)
    base_unpaced, mine_unpaced = [], []
    for _ in range(phases.stream_pairs):
        base_unpaced.append(base_timer.stream(unpaced, chunks=phases.stream_chunks).ttft)
        mine_unpaced.append(mine_timer.stream(unpaced, chunks=phases.stream_chunks).ttft)
    base_timer.close()
    mine_timer.close()
    return {
        "added_ttft_unpaced_p50_ms": (percentile(mine_unpaced, 50) - percentile(base_unpaced, 50)) * 1e3,
        "ttft_p50_ms": percentile(mine_ttft, 50) * 1e3,
        "added_ttft_p50_ms": (percentile(mine_ttft, 50) - percentile(base_ttft, 50)) * 1e3,
        "added_ttft_p99_ms": (percentile(mine_ttft, 99) - percentile(base_ttft, 99)) * 1e3,
        "added_gap_p50_ms": (percentile(mine_gaps, 50) - percentile(base_gaps, 50)) * 1e3,
        "added_gap_p99_ms": (percentile(mine_gaps, 99) - percentile(base_gaps, 99)) * 1e3,
        "events": sorted(mine_events),
        "direct_events": sorted(base_events),
    }


def _concurrent(server: Server, target: Target, phases: Phases) -> dict[str, Any]:
    body = _chat(stream_model(phases.concurrent_chunks, phases.concurrent_gap_ms), stream=True)
    idle = server.rss_bytes()
    with RssSampler(server) as sampler:
        result = concurrent_streams(
            target, body, streams=phases.concurrent, min_events=phases.concurrent_chunks + 1,
            timeout=phases.concurrent_timeout,
        )  # fmt: skip
    time.sleep(0.5)
    return {
        "streams": result.started,
        "completed": result.completed,
        "completed_share": result.completed / result.started,
        "ttft_p99_ms": percentile(result.ttfts, 99) * 1e3,
        "seconds": result.seconds,
        "idle_rss_mib": idle / MIB,
        "peak_rss_mib": sampler.peak / MIB,
        "after_rss_mib": server.rss_bytes() / MIB,
    }


@dataclass
class _Running:
    spec: PathSpec
    server: Server
    target: Target


def _throughput_rounds(running: list[_Running], direct: Target, phases: Phases, use_wrk: bool) -> dict[str, Any]:
    """req/s of every path (and direct) in interleaved rounds: a machine that slows down for a while
    slows every path in that round, not one path's whole figure. Each path's median round is kept."""
    load = wrk_load if use_wrk else python_load
    body = _chat(JSON_MODEL)
    targets = [direct, *(r.target for r in running)]
    bodies = {r.target.name: r.spec.body or body for r in running}
    if phases.warmup_seconds:
        for target in targets:
            load(target, bodies.get(target.name, body), connections=phases.connections, seconds=phases.warmup_seconds)
    rounds: dict[str, list[Throughput]] = {target.name: [] for target in targets}
    for _ in range(phases.load_rounds):
        for target in targets:
            sent = bodies.get(target.name, body)
            rounds[target.name].append(load(target, sent, connections=phases.connections, seconds=phases.load_seconds))
    out = {}
    for name, measured in rounds.items():
        ordered = sorted(measured, key=lambda t: t.requests_per_second)
        middle = dataclasses.asdict(ordered[len(ordered) // 2])
        middle["rounds"] = [round(t.requests_per_second) for t in measured]
        middle["errors"] = sum(t.errors for t in measured)
        out[name] = middle
    return out


def _settle(running: list[_Running]) -> None:
    """Every gateway idle before a phase at one connection: a recorder still exporting and writing what the
    throughput rounds left it (on the gateway's core) would otherwise be charged to this phase's latency."""
    for item in running:
        item.server.settle()


def _measure_all(running: list[_Running], direct: Target, phases: Phases, use_wrk: bool) -> dict[str, Any]:
    json_body = _chat(JSON_MODEL)
    results: dict[str, Any] = {
        "direct": {
            "label": "direct to the fake upstream",
            "latency": {
                "p50_ms": median(
                    [percentile(latency_round(direct, json_body, requests=phases.latency_requests,
                                              max_seconds=phases.latency_seconds), 50) * 1e3
                     for _ in range(phases.latency_rounds)]
                )
            },
        }
    }  # fmt: skip
    for item in running:
        results[item.spec.name] = {"label": item.spec.label}
    for item in running:
        print(f"latency at 1 connection: {item.spec.name}", file=sys.stderr, flush=True)
        _settle(running)
        results[item.spec.name]["latency"] = _latency(direct, item.target, item.spec.body or json_body, phases)
    print("throughput rounds", file=sys.stderr, flush=True)
    for name, load in _throughput_rounds(running, direct, phases, use_wrk).items():
        results[name]["load"] = load
    for item in running:
        if item.spec.streams:
            print(f"streams: {item.spec.name}", file=sys.stderr, flush=True)
            _settle(running)
            results[item.spec.name]["stream"] = _streams(direct, item.target, phases)
            results[item.spec.name]["concurrent"] = _concurrent(item.server, item.target, phases)
    return results


def _versions(litellm: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for package in ("relaygate", "aiohttp", "uvicorn", "uvloop", "httptools", "starlette", "httpx", "httpx2",
                    "httpx-aiohttp"):  # fmt: skip
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    out["litellm"] = litellm
    if wrk_available():
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        out["wrk"] = (version.stdout + version.stderr).split("\n", 1)[0].strip()
    return out


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": platform.node(),
    }


def run(
    phases: Phases,
    *,
    litellm: str | None,
    clients: bool,
    out: Path,
    chart: bool,
    only: set[str] | None = None,
    scale_out: bool = False,
) -> dict[str, Any]:
    started = time.monotonic()
    pinned = pin_self()
    use_wrk = wrk_available()
    litellm_version = None
    if litellm:
        from bench.litellm import ensure_litellm

        litellm_version = ensure_litellm(litellm)
    upstream, _ = start_fake_upstream()
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "versions": _versions(litellm_version),
        "phases": dataclasses.asdict(phases),
        "pinned": pinned,
        "load_generator": "wrk" if use_wrk else "python",
        "paths": {},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="relaygate-bench-") as work:
            running: list[_Running] = []
            try:
                # Every path is started first and measured phase by phase, so that throughput can be
                # taken in interleaved rounds; an idle server costs the measured one nothing.
                for spec in paths(litellm=litellm_version, clients=clients, phases=phases, scale_out=scale_out):
                    if only and spec.name not in only:
                        continue
                    print(f"starting {spec.name}", file=sys.stderr, flush=True)
                    server, headers = spec.start(upstream.base_url + "/v1", Path(work))
                    running.append(_Running(spec, server, Target(spec.name, server.port, headers)))
                results["paths"] = _measure_all(running, Target("direct", upstream.port), phases, use_wrk)
            except Exception as exc:
                logs = "\n".join(f"--- {r.spec.name} ---\n{r.server.log_tail()}" for r in running)
                raise RuntimeError(f"{exc}\n{logs}") from exc
            finally:
                for item in running:
                    item.server.stop()
    finally:
        upstream.stop()
    print("adapter cost per streamed chunk", file=sys.stderr, flush=True)
    results["adapters"] = adapters.measure(chunks=phases.adapter_chunks, repeats=phases.adapter_repeats)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["checks"] = report.checks(results)
    report.write(results, out, chart=chart)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny phases: checks that the benchmark runs")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument("--litellm-version", default=None, help="LiteLLM release to install and measure")
    parser.add_argument("--no-clients", action="store_true", help="measure only the aiohttp floor, not the others")
    parser.add_argument("--only", action="append", help="measure only this path (repeatable)")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the PNG")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where results go (default {RESULTS})")
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help="also the full stack on PostgreSQL and Redis with 1 and 2 workers (BENCH_POSTGRES, BENCH_REDIS)",
    )
    args = parser.parse_args(argv)
    from bench.litellm import LITELLM_VERSION

    litellm = None if args.no_litellm else (args.litellm_version or LITELLM_VERSION)
    results = run(
        QUICK if args.quick else Phases(),
        litellm=litellm,
        clients=not args.no_clients,
        out=args.out,
        chart=not args.no_chart,
        only=set(args.only) if args.only else None,
        scale_out=args.scale_out,
    )
    print(report.table(results))
    failed = [check for check in results["checks"] if check["fatal"] and not check["ok"]]
    for check in failed:
        print(f"RUN INVALID: {check['name']}: {check['detail']}", file=sys.stderr)
    return 1 if failed else 0


def dump(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=2, allow_nan=True)
