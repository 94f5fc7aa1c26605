"""The recorder runs at idle priority, and requests wait for it when it falls behind (but not when it is stuck).

A recorder at normal priority on the serving process's core held back the requests that arrived during one of
its batches; at idle priority it gives way to them, and when the requests leave it no CPU at all, the gateway
holds new requests back until it has caught up. Real gateways, real recorder processes, a real SQLite ledger.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from relaygate.recorder import Recorder
from tests.conftest import make_settings
from tests.otlp import OtlpReceiver
from tests.servers import relaygate_serve
from tests.test_recorder import _chat, _served, _stored

pytestmark = pytest.mark.anyio

QUIET_OTEL = {name: "" for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_METRICS_EXPORTER")}


def _processes() -> dict[int, tuple[int, bytes]]:
    """Every process: its parent and its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (parent, (entry / "cmdline").read_bytes())
            except OSError:
                continue
    return found


def _threads_policies(pid: int) -> set[int]:
    return {os.sched_getscheduler(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()}


def _policies_of_serve(tmp_path: Path, server: str) -> tuple[set[int], set[int]]:
    """The scheduling policies of the serving process's threads, and of the recorder's threads."""
    config = tmp_path / "relaygate.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'ledger.db'}\n{server}")
    with relaygate_serve(["--config", str(config)], env=QUIET_OTEL, cwd=tmp_path) as base_url:
        body = {"model": "mock/echo", "messages": [{"role": "user", "content": "Hi"}]}
        assert httpx.post(f"{base_url}/v1/chat/completions", json=body).status_code == 200
        port = base_url.rsplit(":", 1)[1].encode()
        processes = _processes()
        serving = next(
            pid for pid, (_, cmdline) in processes.items() if b"relaygate.cli\0serve\0--port\0" + port in cmdline
        )
        recorder = next(
            pid
            for pid, (parent, cmdline) in processes.items()
            if parent == serving and b"relaygate.recorder" in cmdline
        )
        # The recorder takes its priority once it has read its config, and only then starts its threads (its
        # reader first): each inherits it.
        deadline = time.monotonic() + 30
        while len(list(Path(f"/proc/{recorder}/task").iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return _threads_policies(serving), _threads_policies(recorder)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_serve_runs_the_recorder_at_idle_priority_and_the_serving_process_at_normal(tmp_path: Path) -> None:
    serving, recorder = _policies_of_serve(tmp_path, "")
    assert serving == {os.SCHED_OTHER}
    assert recorder == {os.SCHED_IDLE}


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_recorder_priority_normal_leaves_the_recorder_at_normal_priority(tmp_path: Path) -> None:
    _, recorder = _policies_of_serve(tmp_path, "server:\n  recorder_priority: normal\n")
    assert recorder == {os.SCHED_OTHER}


async def _concurrent_calls(client: httpx.AsyncClient, count: int, concurrency: int) -> list[str]:
    traces: list[str] = []
    limiter = anyio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limiter:
            response = await client.post("/v1/chat/completions", json=_chat(f"call {index}"))
            assert response.status_code == 200, response.text
            traces.append(response.headers["x-trace-id"])

    async with anyio.create_task_group() as group:
        for index in range(count):
            group.start_soon(one, index)
    return traces


async def _starved(recorder: Recorder, seconds: float) -> None:
    """The recorder gets no CPU for ``seconds``, as when requests keep its core busy."""
    assert recorder.pid is not None
    os.kill(recorder.pid, signal.SIGSTOP)
    try:
        await anyio.sleep(seconds)
    finally:
        os.kill(recorder.pid, signal.SIGCONT)


async def test_requests_wait_for_a_recorder_that_falls_behind_so_nothing_is_dropped(
    upstream_url: str, tmp_path: Path
) -> None:
    # A queue of 300 records, handed over eight at a time. Requests wait past 32; the 16 in flight add their
    # records (7 or so each) after that.
    options: dict[str, Any] = {"max_pending": 300, "batch": 8, "stall": 10.0}
    dropped = {}
    for high_water in (32, 0):  # 0: requests never wait, the control
        settings = make_settings(upstream_url, database=f"sqlite:///{tmp_path / f'ledger-{high_water}.db'}")
        with OtlpReceiver() as receiver:
            async with _served(settings, traces_url=receiver.traces_url, high_water=high_water, **options) as (
                gateway,
                recorder,
                client,
            ):
                assert recorder is not None
                traces = await _concurrent_calls(client, 2, 1)
                await recorder.flush()
                async with anyio.create_task_group() as group:
                    group.start_soon(_starved, recorder, 1.5)
                    traces += await _concurrent_calls(client, 200, 16)
                await recorder.flush()
                dropped[high_water] = (recorder.dropped_calls, recorder.dropped_spans, recorder.dropped_metrics)
                if high_water:
                    assert await _stored(gateway, traces) == traces
            if high_water:
                assert {span.trace_id for span in receiver.spans} >= set(traces)
    assert dropped[32] == (0, 0, 0)
    assert sum(dropped[0]) > 0, "without waiting, the same calls overflow the queue"


async def test_requests_do_not_wait_for_a_stuck_recorder(
    upstream_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(upstream_url, database=f"sqlite:///{tmp_path / 'ledger.db'}")
    options: dict[str, Any] = {"max_pending": 40, "batch": 2, "high_water": 8, "stall": 2.0}
    async with _served(settings, **options) as (gateway, recorder, client):
        assert recorder is not None
        await _concurrent_calls(client, 4, 1)
        await recorder.flush()
        assert recorder.pid is not None
        stuck = recorder.pid
        os.kill(stuck, signal.SIGSTOP)  # a recorder that finishes nothing: as a database that hangs
        try:
            with caplog.at_level(logging.WARNING, logger="relaygate.recorder"), anyio.fail_after(60):
                await _concurrent_calls(client, 60, 8)
            assert isinstance(recorder, Recorder) and recorder.congested
            assert "finished no batch in 2.0 s; requests do not wait for it" in caplog.text
            # Found stuck once, the recorder holds no request back until it moves again.
            await asyncio.wait_for(recorder.room(), 1.0)
            assert recorder.dropped_calls > 0
        finally:
            os.kill(stuck, signal.SIGCONT)
        # Moving again, it is caught up with: what was queued is stored, what overflowed was counted.
        await recorder.flush()
        assert recorder.pending == 0
