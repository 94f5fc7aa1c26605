"""Real HTTP servers on 127.0.0.1 for tests: uvicorn in a thread, or ``relaygate serve`` in a process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp


@contextmanager
def serve_in_thread(app: ASGIApp, *, lifespan: str = "auto", port: int = 0, abrupt: bool = False) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 (or on ``port``: a server that comes back); yields its base URL.

    ``abrupt`` stops it as a killed process would: open connections (event streams) are cut, not waited for.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = abrupt
        thread.join(10)
        sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def relaygate_serve(
    args: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, log: Path | None = None
) -> Iterator[str]:
    """Run the real ``relaygate serve`` command; yields its base URL once /health answers.

    Without ``cwd`` it runs in a scratch directory, where its default ledger file goes. With ``log``, its
    output (stdout and stderr: everything it logs) is kept in that file.
    """
    scratch = tempfile.TemporaryDirectory() if cwd is None else None
    cwd = Path(scratch.name) if scratch is not None else cwd
    port = free_port()
    command = [sys.executable, "-m", "relaygate.cli", "serve", "--port", str(port), *args]
    process_env = {**os.environ, **(env or {})}
    # Output goes to a file, not a pipe: a pipe nobody reads blocks the server once it fills up.
    output = tempfile.TemporaryFile() if log is None else log.open("w+b")
    process = subprocess.Popen(command, env=process_env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        # Generous: two workers and their recorder processes import at once, on a machine that may be busy.
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output.seek(0)
                raise RuntimeError(f"relaygate serve exited with {process.returncode}:\n{output.read().decode()}")
            try:
                if httpx.get(base_url + "/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("relaygate serve did not become healthy")
            time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()
        if scratch is not None:
            scratch.cleanup()
