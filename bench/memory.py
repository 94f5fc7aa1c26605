"""Resident memory of a gateway path, process by process: idle, and at its peak under 1,000 concurrent streams.

``./bench/run`` reports one figure for 1,000 concurrent streams: the peak of the RSS summed over the gateway's
process tree. This says where it goes: the serving process (``relaygate serve``) and its recorder child
(``python -m relaygate.recorder``, which exports spans and writes the ledger), each idle after start-up and at
its own peak while the streams run, and the peak of their sum (the benchmark's figure; the goal of issue 20 is
under 150 MiB with every layer on).

    .venv/bin/python -m bench.memory                        # the full stack (bench/relaygate-full.yaml)
    .venv/bin/python -m bench.memory --path relaygate-min   # proxy only
    .venv/bin/python -m bench.memory --streams 200          # fewer streams, for a quick look
    PYTHONPATH=../other-checkout/src .venv/bin/python -m bench.memory   # another checkout, to compare

The gateway and the fake upstream are started as ``./bench/run`` starts them (the gateway pinned to core 0,
this script and the upstream on core 1); the streams are the benchmark's (each on its own connection, 10
chunks 200 ms apart). RSS is read from ``/proc/PID/statm`` every 50 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.load import Target, concurrent_streams, python_load
from bench.procs import Server, pin_self, rss_of, start_fake_upstream
from bench.run import MIB, Phases, _chat, _relaygate_full, _relaygate_min
from bench.upstream import JSON_MODEL, stream_model


def _role(pid: int, server: Server) -> str:
    if pid == server.process.pid:
        return "serving"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    return "recorder" if "relaygate.recorder" in command else "child"


class ProcessSampler:
    """Each process's peak RSS, and the peak of their sum, sampled every ``interval`` seconds in a thread."""

    def __init__(self, pids: list[int], interval: float = 0.05) -> None:
        self.pids = pids
        self.interval = interval
        self.peaks = dict.fromkeys(pids, 0)
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        total = 0
        for pid in self.pids:
            rss = rss_of([pid])
            self.peaks[pid] = max(self.peaks[pid], rss)
            total += rss
        self.total = max(self.total, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ProcessSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@dataclass
class ProcessMemory:
    pid: int
    role: str
    idle_mib: float
    warm_mib: float
    peak_mib: float


@dataclass
class Memory:
    path: str
    streams: int
    completed: int
    seconds: float
    processes: list[ProcessMemory]
    idle_total_mib: float
    peak_total_mib: float


def measure(path: str, *, streams: int, chunks: int, gap_ms: int, warmup: int) -> Memory:
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    upstream, upstream_url = start_fake_upstream()
    phases = Phases(concurrent=streams, concurrent_chunks=chunks, concurrent_gap_ms=gap_ms)
    start = _relaygate_min if path == "relaygate-min" else _relaygate_full(phases, path)
    server, headers = start(upstream_url, work)
    try:
        target = Target(path, server.port, headers)
        time.sleep(1.0)
        pids = server.pids()
        idle = {pid: rss_of([pid]) for pid in pids}
        if warmup:
            # A few calls first, so that "idle" and the peak are both after every lazy import a call makes.
            python_load(target, _chat(JSON_MODEL), connections=4, seconds=0.1 * warmup)
            time.sleep(1.0)
        warm = {pid: rss_of([pid]) for pid in pids}
        body = _chat(stream_model(chunks, gap_ms), stream=True)
        with ProcessSampler(pids) as sampler:
            result = concurrent_streams(target, body, streams=streams, min_events=chunks + 1, timeout=60.0)
        processes = [
            ProcessMemory(pid, _role(pid, server), idle[pid] / MIB, warm[pid] / MIB, sampler.peaks[pid] / MIB)
            for pid in pids
        ]
        return Memory(
            path, streams, result.completed, result.seconds, processes, sum(idle.values()) / MIB, sampler.total / MIB
        )
    finally:
        server.stop()
        upstream.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--path", default="relaygate-full", help="relaygate-full (default), a layer-off path, relaygate-min"
    )
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams (default 1000)")
    parser.add_argument("--chunks", type=int, default=10, help="chunks per stream (default 10)")
    parser.add_argument("--gap-ms", type=int, default=200, help="between chunks (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="tenths of a second of calls before (default 10)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    pin_self()
    memory = measure(args.path, streams=args.streams, chunks=args.chunks, gap_ms=args.gap_ms, warmup=args.warmup)
    if args.json:
        print(json.dumps(dataclasses.asdict(memory), indent=2))
        return 0 if memory.completed == memory.streams else 1
    print(f"{memory.path}: {memory.completed}/{memory.streams} streams done in {memory.seconds:.1f} s")
    print(f"  {'process':10} {'pid':>7} {'idle MiB':>9} {'warm MiB':>9} {'peak MiB':>9}")
    for process in memory.processes:
        print(
            f"  {process.role:10} {process.pid:>7} {process.idle_mib:9.1f} {process.warm_mib:9.1f} "
            f"{process.peak_mib:9.1f}"
        )
    print(f"  {'total':10} {'':>7} {memory.idle_total_mib:9.1f} {'':>9} {memory.peak_total_mib:9.1f}")
    return 0 if memory.completed == memory.streams else 1


if __name__ == "__main__":
    sys.exit(main())
