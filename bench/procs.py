"""Processes of a benchmark run: started pinned to a core, waited for, measured, stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GATEWAY_CORE", "LOAD_CORE", "RssSampler", "Server", "free_port", "pin_self", "start_server"]

# The gateway under test gets core 0 to itself; the fake upstream, the load generators and this
# script share core 1. On a one-core machine nothing is pinned.
GATEWAY_CORE = 0
LOAD_CORE = 1
PAGE = os.sysconf("SC_PAGE_SIZE")


def _can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin_self() -> bool:
    """Pin this process (and so every child it starts) to the load core."""
    if not _can_pin():
        return False
    os.sched_setaffinity(0, {LOAD_CORE})
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    children: list[int] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The process and its descendants (LiteLLM and uvicorn workers may fork)."""
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(parents.get(pid, ()))
        return found

    def rss_bytes(self) -> int:
        return rss_of(self.pids())

    def settle(self, *, idle_share: float = 0.03, window: float = 0.25, timeout: float = 10.0) -> float:
        """Wait until the server's processes are idle (under ``idle_share`` of a core over ``window`` seconds):
        what a previous phase left them to do off the request's path (a recorder exporting spans and writing
        rows) is then done, and is not charged to the next phase's latency. Returns the seconds waited."""
        start = time.monotonic()
        pids = self.pids()
        before = sum(cpu_seconds(pid) for pid in pids)
        while time.monotonic() - start < timeout:
            time.sleep(window)
            after = sum(cpu_seconds(pid) for pid in pids)
            if after - before < idle_share * window:
                break
            before = after
        return time.monotonic() - start

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    ready_path: str = "/health",
    ready_text: str | None = None,
    env: Mapping[str, str] | None = None,
    unset: Sequence[str] = (),
    pin: bool = True,
    timeout: float = 60.0,
    cwd: str | None = None,
    cores: set[int] | None = None,
) -> Server:
    """Start ``command`` and wait until ``GET ready_path`` on ``port`` answers (with ``ready_text``)."""
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**{k: v for k, v in os.environ.items() if k not in unset}, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    server = Server(name, process, port, log)
    # The gateway's core, or ``cores`` (several workers on a machine with more cores than the load needs).
    gateway_cores = cores or {GATEWAY_CORE}
    if pin and _can_pin():
        os.sched_setaffinity(process.pid, gateway_cores)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.base_url + ready_path, timeout=2) as response:
                text = response.read().decode(errors="replace")
            # A server that moved to another port would not answer here; one that answers with
            # someone else's page would not say ready_text.
            if ready_text is None or ready_text in text:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not become ready on port {port} in {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.1)
    if pin and _can_pin():
        # Workers forked while starting inherit the pin, but set it again in case one was not.
        for pid in server.pids():
            try:
                os.sched_setaffinity(pid, gateway_cores)
            except OSError:
                continue
    return server


class RssSampler:
    """Peak resident memory of a server's processes, sampled every ``interval`` seconds in a thread."""

    def __init__(self, server: Server, interval: float = 0.05) -> None:
        self.server = server
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.peak = self.server.rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss_bytes())

    def _run(self) -> None:
        # The process tree is found once: walking /proc every 50 ms would cost the load core more.
        pids = self.server.pids()
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_of(pids))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process (its threads included), in seconds; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue  # the process is gone
    return total


def start_fake_upstream() -> tuple[Server, str]:
    """The fake upstream (``bench/upstream.py``) on a free port, unpinned, and its ``/v1`` base URL."""
    port = free_port()
    command = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
    upstream = start_server("upstream", command, port=port, pin=False, cwd=str(Path(__file__).resolve().parent.parent))
    return upstream, f"http://127.0.0.1:{port}/v1"
