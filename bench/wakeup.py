"""What an idle pause costs a request on this machine, before any gateway is involved.

The benchmark's first-chunk phase pauses 5 ms between a stream's chunks, and the floor alone then adds far more
to the first chunk (0.4-1.1 ms) than to a whole non-streamed answer (0.2 ms). This sends the same non-streamed
chat call to the fake upstream through aiohttp (the gateways' upstream client, on uvloop), one at a time, after
pauses of different lengths, and reports the median time to the response's headers after each: on a VM whose
idle cores take long to wake, the figure grows with the pause, and every hop of a gateway pays it again.

    .venv/bin/python -m bench.wakeup                 # pauses of 0, 2, 10 and 40 ms
    .venv/bin/python -m bench.wakeup --pauses 0 40 --requests 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

import aiohttp
import orjson
import uvloop

from bench.procs import pin_self, start_fake_upstream
from bench.upstream import JSON_MODEL


async def _medians(url: str, pauses: list[float], requests: int) -> dict[str, float]:
    body = orjson.dumps({"model": JSON_MODEL, "messages": [{"role": "user", "content": "Hi"}]})
    headers = {"content-type": "application/json"}
    out: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=headers) as response:  # a warm connection
            await response.read()
        for pause in pauses:
            times = []
            for _ in range(requests):
                await asyncio.sleep(pause / 1000)
                start = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    times.append(time.perf_counter() - start)
                    await response.read()
            out[f"{pause:g}"] = statistics.median(times) * 1e3
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wakeup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pauses", type=float, nargs="+", default=[0, 2, 10, 40], help="idle pauses, in ms")
    parser.add_argument("--requests", type=int, default=100, help="requests after each pause (default 100)")
    parser.add_argument("--json", action="store_true", help="print the medians as JSON")
    args = parser.parse_args(argv)
    pin_self()
    upstream, base = start_fake_upstream()
    try:
        medians = uvloop.run(_medians(base + "/chat/completions", args.pauses, args.requests))
    finally:
        upstream.stop()
    if args.json:
        print(json.dumps(medians))
    else:
        for pause, median in medians.items():
            print(f"after {pause:>4} ms idle: {median:.3f} ms to the headers (median of {args.requests})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
