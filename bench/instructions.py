"""Instructions per call of a gateway path's serving process, counted by callgrind: the same figure whatever
else the machine is doing, so two checkouts compare on a busy machine (a request-path change shows as a
change of this count; timings need ``./bench/run`` on a quiet one).

It starts the fake upstream and the path as ``./bench/run`` does, with the serving process under
``valgrind --tool=callgrind`` (its recorder child runs natively and is not counted), warms it up with
``--warmup`` sequential calls, counts ``--calls`` more and prints instructions per call:

    .venv/bin/python -m bench.instructions                          # the full stack
    .venv/bin/python -m bench.instructions --path relaygate-min     # proxy only
    PYTHONPATH=../other/src .venv/bin/python -m bench.instructions  # another checkout, to compare
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import run
from bench.load import Target, latency_round
from bench.procs import start_fake_upstream
from bench.upstream import JSON_MODEL


def _totals(out: Path) -> int:
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--path", default="relaygate-full", help="relaygate-full (default), a layer-off path, relaygate-min"
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench.instructions needs valgrind (Debian's package valgrind)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    out = work / "callgrind.out"
    run.GATEWAY_PYTHON = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
    ]
    run.GATEWAY_START_TIMEOUT = 600.0
    upstream, upstream_url = start_fake_upstream()
    start = run._relaygate_min if args.path == "relaygate-min" else run._relaygate_full(run.Phases(), args.path)
    server, headers = start(upstream_url, work)
    try:
        target = Target(args.path, server.port, headers)
        body = run._chat(JSON_MODEL)
        latency_round(target, body, requests=args.warmup, max_seconds=600)
        server.settle()
        pid = str(server.process.pid)
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        latency_round(target, body, requests=args.calls, max_seconds=3600)
        time.sleep(0.5)  # the last call's tail (its span's end, its ledger record) on the serving process
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
        time.sleep(1.0)
        calls = args.calls + 1  # latency_round makes one call on its new connection before it times any
        print(f"{args.path}: {calls} calls, {_totals(out) / calls / 1e6:.3f} M instructions per call")
    finally:
        server.stop()
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
