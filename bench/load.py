"""Load generators and timers: one connection at a time, many at once, and streams.

Latency at one connection uses a blocking socket and httptools' parser, so the client adds a few
microseconds and the same few to every path; figures are reported as deltas against direct, in
interleaved rounds, so that drift of the machine falls on both sides. Throughput uses wrk when it is
installed (a C load generator that is never the bottleneck here) and an asyncio client otherwise.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httptools
import uvloop

__all__ = [
    "StreamTimer",
    "StreamTiming",
    "Target",
    "concurrent_streams",
    "latency_round",
    "parse_wrk",
    "percentile",
    "python_load",
    "wrk_available",
    "wrk_load",
]

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    headers: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"

    def request(self, body: bytes) -> bytes:
        lines = [
            f"POST {CHAT_PATH} HTTP/1.1",
            f"host: {self.host}:{self.port}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class _Response:
    """httptools callbacks for one HTTP/1.1 response at a time on a keep-alive connection."""

    def __init__(self) -> None:
        self.complete = False
        self.body = bytearray()

    def on_message_begin(self) -> None:
        self.complete = False
        self.body.clear()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    """A blocking keep-alive connection that times whole requests."""

    def __init__(self, target: Target, response: _Response | None = None) -> None:
        self.target = target
        self.sock = socket.create_connection((target.host, target.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.response = response or _Response()
        self.parser = httptools.HttpResponseParser(self.response)

    def exchange(self, request: bytes) -> tuple[float, int]:
        start = time.perf_counter()
        self.sock.sendall(request)
        self.response.complete = False
        while not self.response.complete:
            data = self.sock.recv(262144)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.parser.feed_data(data)
        return time.perf_counter() - start, self.parser.get_status_code()

    def close(self) -> None:
        self.sock.close()


def latency_round(target: Target, body: bytes, *, requests: int, max_seconds: float) -> list[float]:
    """Seconds per request, one at a time on one connection, for ``requests`` or ``max_seconds``."""
    connection = _Connection(target)
    request = target.request(body)
    times: list[float] = []
    try:
        connection.exchange(request)  # a warm connection: the upstream pool is filled too
        deadline = time.perf_counter() + max_seconds
        while len(times) < requests and time.perf_counter() < deadline:
            elapsed, status = connection.exchange(request)
            if status != 200:
                raise RuntimeError(f"{target.name} answered {status}: {bytes(connection.response.body)[:300]!r}")
            times.append(elapsed)
    finally:
        connection.close()
    return times


@dataclass
class StreamTiming:
    ttft: float
    gaps: list[float]
    events: int
    done: bool


class _StreamResponse(_Response):
    """Notes when each SSE event arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []
        self.tail = b""
        self.done = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.arrivals = []
        self.tail = b""
        self.done = False

    def on_body(self, body: bytes) -> None:
        now = time.perf_counter()
        events = (self.tail + body).split(b"\n\n")
        self.tail = events.pop()
        for event in events:
            self.arrivals.append(now)
            if event.startswith(b"data: [DONE]"):
                self.done = True


class StreamTimer:
    """Streamed calls one after another on one keep-alive connection, as a client's pool makes them."""

    def __init__(self, target: Target) -> None:
        self.response = _StreamResponse()
        self.connection = _Connection(target, self.response)

    def stream(self, body: bytes, *, chunks: int) -> StreamTiming:
        """Time to the first event, and the gaps between the ``chunks`` paced content events (the role
        event comes first; the finish, usage and ``[DONE]`` events arrive with the last content event)."""
        request = self.connection.target.request(body)
        start = time.perf_counter()
        _, status = self.connection.exchange(request)
        if status != 200:
            raise RuntimeError(f"{self.connection.target.name} answered {status} to a stream")
        arrivals = self.response.arrivals
        paced = arrivals[1 : chunks + 1]
        gaps = [later - earlier for earlier, later in zip(paced, paced[1:], strict=False)]
        return StreamTiming(arrivals[0] - start if arrivals else float("nan"), gaps, len(arrivals), self.response.done)

    def close(self) -> None:
        self.connection.close()


@dataclass
class ConcurrentStreams:
    started: int
    completed: int
    ttfts: list[float]
    seconds: float


def concurrent_streams(
    target: Target, body: bytes, *, streams: int, min_events: int, timeout: float
) -> ConcurrentStreams:
    """``streams`` streamed calls at once, each on its own connection; complete means every event and [DONE]."""
    return uvloop.run(_concurrent_streams(target, body, streams, min_events, timeout))


async def _concurrent_streams(
    target: Target, body: bytes, streams: int, min_events: int, timeout: float
) -> ConcurrentStreams:
    request = target.request(body)
    ttfts: list[float] = []
    start = time.perf_counter()

    async def one() -> bool:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(target.host, target.port)
            begin = time.perf_counter()
            response = _StreamResponse()
            parser = httptools.HttpResponseParser(response)
            writer.write(request)
            while not response.complete:
                data = await reader.read(65536)
                if not data:
                    break
                parser.feed_data(data)
            if response.arrivals:
                ttfts.append(response.arrivals[0] - begin)
            return parser.get_status_code() == 200 and response.done and len(response.arrivals) >= min_events
        except (OSError, httptools.HttpParserError):
            return False
        finally:
            if writer is not None:
                writer.close()

    async def bounded() -> bool:
        try:
            return await asyncio.wait_for(one(), timeout)
        except TimeoutError:
            return False

    results = await asyncio.gather(*(bounded() for _ in range(streams)))
    return ConcurrentStreams(streams, sum(results), ttfts, time.perf_counter() - start)


@dataclass
class Throughput:
    requests_per_second: float
    p50: float
    p99: float
    errors: int
    generator: str


def python_load(target: Target, body: bytes, *, connections: int, seconds: float) -> Throughput:
    """A closed-loop asyncio load generator, for machines without wrk; it tops out near 10k req/s."""
    return uvloop.run(_python_load(target, body, connections, seconds))


async def _python_load(target: Target, body: bytes, connections: int, seconds: float) -> Throughput:
    request = target.request(body)
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(target.host, target.port)
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        try:
            while time.perf_counter() < deadline:
                begin = time.perf_counter()
                writer.write(request)
                response.complete = False
                while not response.complete:
                    data = await reader.read(262144)
                    if not data:
                        raise ConnectionError("closed")
                    parser.feed_data(data)
                latencies.append(time.perf_counter() - begin)
                if parser.get_status_code() != 200:
                    errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return Throughput(len(latencies) / elapsed, percentile(latencies, 50), percentile(latencies, 99), errors, "python")


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def wrk_load(target: Target, body: bytes, *, connections: int, seconds: float) -> Throughput:
    """wrk, one thread, closed loop, POSTing ``body``; latency percentiles from ``--latency``."""
    headers = {"content-type": "application/json", **target.headers}
    lua = "wrk.method = 'POST'\n" + f"wrk.body = {_lua_string(body.decode())}\n"
    lua += "".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}\n" for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        url = f"http://{target.host}:{target.port}{CHAT_PATH}"
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            script.name,
            url,
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    finally:
        Path(script.name).unlink()
    return parse_wrk(output)


def parse_wrk(output: str) -> Throughput:
    rate = _WRK_RATE.search(output)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    percentiles = {q: float(v) * _UNIT[unit] for q, v, unit in _WRK_PERCENTILE.findall(output)}
    errors = sum(int(n) for n in _WRK_ERRORS.findall(output))
    socket_errors = _WRK_SOCKET_ERRORS.search(output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    nan = float("nan")
    return Throughput(float(rate[1]), percentiles.get("50", nan), percentiles.get("99", nan), errors, "wrk")


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
