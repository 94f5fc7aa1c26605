"""CPU per request of a gateway path, measured in a way a busy machine does not move much.

Wall-clock figures on a shared machine mean little; the CPU time a server's processes spend per request
does not depend on how many other processes compete for the cores. This starts the fake upstream and one
gateway path (as ``./bench/run`` starts it), sends ``--requests`` non-streamed chat calls over
``--connections`` keep-alive connections, and reports the CPU time (user + system, from ``/proc``) that
each of the gateway's processes spent per request: the serving process, and apart from it the recorder
(the child process that exports spans and writes the ledger).

    .venv/bin/python -m bench.profile                       # the full stack
    .venv/bin/python -m bench.profile --path relaygate-min  # proxy only
    .venv/bin/python -m bench.profile --py-spy profile.svg  # and a py-spy flame graph of the serving process

A gateway that only moved work between threads of one process shows the same figure; one that moved it to
another process shows it under that process.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import Target, python_load
from bench.procs import cpu_seconds, rss_of, start_fake_upstream
from bench.run import QUICK, Phases, _chat, _relaygate_full, _relaygate_min
from bench.upstream import JSON_MODEL


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()[:80]
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--path", default="relaygate-full", help="relaygate-full (default), a layer-off path, relaygate-min"
    )
    parser.add_argument("--requests", type=int, default=6000, help="calls to send (default 6000)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="also record the serving process with py-spy: a flame graph (.svg), folded stacks (.txt)",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    upstream, upstream_url = start_fake_upstream()
    start = _relaygate_min if args.path == "relaygate-min" else _relaygate_full(Phases(), args.path)
    server, headers = start(upstream_url, work)
    spy = None
    try:
        target = Target(args.path, server.port, headers)
        body = _chat(JSON_MODEL)
        python_load(target, body, connections=4, seconds=QUICK.load_seconds + 1)  # warm-up
        time.sleep(1.0)  # the recorder catches up with the warm-up
        pids = server.pids()
        before = {pid: cpu_seconds(pid) for pid in pids}
        if args.py_spy and shutil.which("py-spy"):
            form = "raw" if args.py_spy.endswith(".txt") else "flamegraph"
            command = ["py-spy", "record", "-p", str(server.process.pid), "-o", args.py_spy, "-r", "200", "-f", form]
            spy = subprocess.Popen([*command, "--nonblocking", "--threads"], stdout=subprocess.DEVNULL)
        sent = 0
        rate = 0.0
        while sent < args.requests:
            result = python_load(target, body, connections=args.connections, seconds=1.0)
            sent += round(result.requests_per_second * 1.0)
            rate = result.requests_per_second
            if result.errors:
                print(f"{result.errors} calls failed", file=sys.stderr)
        time.sleep(2.0)  # what the calls left to do off their path (export, writes) is done by now
        after = {pid: cpu_seconds(pid) for pid in server.pids()}
        print(f"{args.path}: {sent} calls (last second at {rate:,.0f} req/s on this machine, not a benchmark figure)")
        total = 0.0
        for pid, seconds in after.items():
            used = seconds - before.get(pid, 0.0)
            total += used
            role = "serving" if pid == server.process.pid else "child"
            rss = rss_of([pid]) / 2**20
            print(f"  {role:8} {pid:>7} {used / sent * 1e6:8.0f} µs CPU/call {rss:6.0f} MiB  {_name(pid)}")
        print(f"  {'total':8} {'':>7} {total / sent * 1e6:8.0f} µs CPU/call")
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait()
        server.stop()
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
