"""What a script router costs per call: a micro-benchmark of routing alone, no HTTP and no upstream.

    .venv/bin/python -m bench.scripts            # about 10 s
    .venv/bin/python -m bench.scripts --quick    # a smoke run (the test suite's)

It times, per request, what the proxy does before it calls a provider: ``ModelRouter.prepare`` (which runs
the script, in a worker thread, in V8) and ``ModelRouter.plan``, for

- a plain ``provider/model`` (no router: the floor);
- seed 001's script router (``return {model: 'test'}``), named in the config;
- a script that reads the request (its last message's length) and the metrics before it picks;
- the V8 call alone (``ScriptEngine.run_sync``, no thread hop), to split the cost between V8 and the rest.

Each figure is the median and the 99th percentile over the calls, in microseconds. The machine's load
moves them: compare rows within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import anyio
import orjson

from relaygate.context import RequestContext
from relaygate.providers import build_providers
from relaygate.routing import ModelRouter
from relaygate.routing.scripts import ScriptEngine
from relaygate.settings import ProviderSettings, ScriptRouterSettings, Settings

SEED_SCRIPT = "const route = ({ request, headers, models, metrics }) => { return {model: 'test'};};"
READING_SCRIPT = """
function route({request, headers, models, metrics}) {
  const last = request.messages[request.messages.length - 1].content;
  const slow = Object.values(metrics).some((m) => (m.latency || 0) > 2);
  return {model: last.length > 200 || slow ? 'mock/large' : 'mock/small'};
}"""
BODY: dict[str, Any] = {"model": "mock/echo", "messages": [{"role": "user", "content": "Hello there " * 10}]}
HEADERS = [(b"content-type", b"application/json"), (b"authorization", b"Bearer rg-bench")]


def _router() -> ModelRouter:
    settings = Settings(providers={"mock": ProviderSettings(kind="mock")}, default_provider="mock")
    return ModelRouter(
        build_providers(settings),
        default_provider="mock",
        routers={
            "seed": ScriptRouterSettings(script=SEED_SCRIPT),
            "reading": ScriptRouterSettings(script=READING_SCRIPT),
        },
    )


async def _time_routing(router: ModelRouter, body: dict[str, Any], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        ctx = RequestContext(project_id="default")
        started = time.perf_counter()
        await router.prepare(body["model"], body, ctx=ctx, headers=HEADERS)
        router.plan(body["model"], body, ctx=ctx, headers=HEADERS)
        out.append((time.perf_counter() - started) * 1e6)
    return out


def _time_engine(engine: ScriptEngine, calls: int) -> list[float]:
    payload = orjson.dumps({"request": BODY, "headers": {}, "models": [], "metrics": {}})
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        engine.run_sync("bench", SEED_SCRIPT, payload, 0.05, 32 * 1024 * 1024)
        out.append((time.perf_counter() - started) * 1e6)
    return out


def _row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"| {name} | {statistics.median(ordered):,.0f} | {p99:,.0f} |"


async def _main(calls: int) -> list[str]:
    router = _router()
    engine = ScriptEngine()
    try:
        cases = {
            "plain provider/model (no router)": BODY,
            "seed 001's script router (named)": {**BODY, "router": {"name": "seed"}},
            "a script reading the request and metrics": {**BODY, "router": {"name": "reading"}},
        }
        rows = ["| routing of one request | p50 µs | p99 µs |", "| --- | --- | --- |"]
        for name, body in cases.items():
            await _time_routing(router, body, max(3, calls // 10))  # warm: the engine is made on the first call
            rows.append(_row(name, await _time_routing(router, body, calls)))
        # In a worker thread, as the router calls it (mini-racer's time limit needs a thread without a loop).
        await anyio.to_thread.run_sync(_time_engine, engine, 3)
        alone = await anyio.to_thread.run_sync(_time_engine, engine, calls)
        rows.append(_row("the V8 call alone (ScriptEngine.run_sync, no thread hop)", alone))
        return rows
    finally:
        router.scripts.close()
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few calls each: a smoke run")
    parser.add_argument("--calls", type=int, default=2000, help="calls per row (default 2000)")
    args = parser.parse_args()
    for line in asyncio.run(_main(20 if args.quick else args.calls)):
        print(line)


if __name__ == "__main__":
    main()
