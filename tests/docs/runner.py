"""Runs the blocks of one docs page in order, as a reader would, against real ``relaygate serve`` processes.

Each page runs in a scratch directory of its own (the working directory, on ``PYTHONPATH``, with a link
to the repository's ``examples/``), with the environment of a shell the page's blocks share:

- a shell block runs in ``bash`` (``set -eo pipefail``); what it exports is there for the next blocks.
  Every ``curl`` it makes must answer 2xx or 3xx, or the statuses its ``status`` directive names;
- a Python block runs in one interpreter per page, so that later blocks see what earlier ones defined;
- a YAML block is a config file: loaded and built into a gateway, as ``relaygate check`` does. A
  ``${VAR}`` it names that is not set gets a placeholder value, exported to the blocks after it;
- a block with a ``title`` is a file: written into the scratch directory (a YAML one also checked);
- a ``server`` block starts in the background on a free port.

``http://127.0.0.1:4318``, the OTLP port of a collector, is a real OTLP receiver (``tests/otlp.py``).
``http://127.0.0.1:PORT`` (or ``localhost:PORT``) in a block (a file too) is the server a ``server`` block
started with ``--port PORT``; for 8080, ``relaygate serve``'s default port, it is ``relaygate serve`` started
by the runner in the scratch directory if no block started one, and started again whenever a block
writes ``relaygate.yaml`` there. ``./scripts/serve`` runs as ``relaygate serve``: the venv it would make
is the one the tests run in.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from relaygate.settings import PRESETS
from tests.docs.snippets import Block, SnippetError
from tests.otlp import OtlpReceiver

__all__ = ["PageRun"]

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("python_worker.py")
DEFAULT_PORT = 8080
UVICORN_PORT = 8000
# An OpenTelemetry collector's OTLP/HTTP port: a block that sends there reaches a real receiver instead.
OTLP_HTTP_PORT = 4318
BLOCK_TIMEOUT = 300.0
SERVER_START_TIMEOUT = 90.0
STATUS_MARK = "@@snippet-status"
# What the reader's environment must not bring into a page: provider keys, a config, telemetry.
CLEARED = frozenset(variable for preset in PRESETS.values() for variable in preset.key_variables)
CLEARED_PREFIXES = ("OTEL_", "RELAYGATE_")
SHELL_PREAMBLE = f"""set -eo pipefail
curl() {{ command curl -w '%{{stderr}}\\n{STATUS_MARK} %{{http_code}}\\n' "$@"; }}
"""
# Commands that keep running: a block with one must be a `server` block (or be skipped).
LONG_RUNNING = re.compile(r"(\brelaygate\s+serve\b|scripts/serve\b|\buvicorn\s|\bdocker[ -]compose\b.*\bup\b)")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PORT_FLAG = re.compile(r"--port[ =](\d+)")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    default: bool  # started by the runner, not by a block

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                # Not the whole graceful shutdown: a gateway flushing spans to a collector that is not
                # there would retry for many seconds, and nothing of it is checked here.
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class PageRun:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = _base_env(workdir)
        self.servers: dict[int, Server] = {}  # by the port the page writes
        self.worker: subprocess.Popen[bytes] | None = None
        self.answers: IO[str] | None = None
        self.worker_log = workdir / ".snippets-python.log"
        self.ran = 0
        self.collector: OtlpReceiver | None = None
        (workdir / "examples").symlink_to(ROOT / "examples")

    def run(self, blocks: list[Block]) -> None:
        try:
            for block in blocks:
                if block.runs:
                    self._run(block)
                    self.ran += 1
        finally:
            self.close()

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        if self.collector is not None:
            self.collector.stop()
            self.collector = None
        if self.worker is not None:
            assert self.worker.stdin is not None
            self.worker.stdin.close()
            try:
                self.worker.wait(10)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
            self.worker = None
        if self.answers is not None:
            self.answers.close()
            self.answers = None

    def _run(self, block: Block) -> None:
        if block.kind == "yaml":
            self._yaml(block)
        elif block.kind == "python":
            if block.title:
                self._write(block)
                compile(block.code, block.title, "exec")
            else:
                self._python(block.where, self._localized(block.code))
        elif block.server:
            self._server(block)
        elif block.title:
            self._write(block)
        else:
            self._shell(block)

    # YAML: a config file, checked as `relaygate check` would.
    def _yaml(self, block: Block) -> None:
        for name in _ENV_REF.findall(block.code):
            self.env.setdefault(name, "docs-" + name.lower().replace("_", "-"))
        path = self._write(block) if block.title else self.workdir / f".snippet-{block.line}.yaml"
        if not block.title:
            path.write_text(block.code, encoding="utf-8")
        answer = self._ask({"op": "check", "path": str(path)})
        if not answer["ok"]:
            raise SnippetError(f"{block.where}: the config does not load:\n{answer['error']}")
        if block.title == "relaygate.yaml":
            default = self.servers.get(DEFAULT_PORT)
            if default is not None and default.default:
                default.stop()
                del self.servers[DEFAULT_PORT]

    def _write(self, block: Block) -> Path:
        assert block.title is not None
        path = self.workdir / block.title
        path.parent.mkdir(parents=True, exist_ok=True)
        # A file that names a server a block started (an MCP server in relaygate.yaml) names its real port.
        code = block.code
        for documented, server in self.servers.items():
            if not server.default:
                code = re.sub(rf"(127\.0\.0\.1|localhost):{documented}\b", f"127.0.0.1:{server.port}", code)
        path.write_text(code, encoding="utf-8")
        return path

    # Python: one interpreter for the page.
    def _python(self, where: str, code: str) -> None:
        answer = self._ask({"op": "exec", "code": code, "name": where})
        if not answer["ok"]:
            raise SnippetError(f"{where}: the Python block failed:\n{answer['error']}{self._tail(self.worker_log)}")

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.worker is None:
            read, write = os.pipe()
            with self.worker_log.open("ab") as log:
                self.worker = subprocess.Popen(
                    [sys.executable, str(WORKER), str(write)],
                    cwd=self.workdir,
                    env=self.env,
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=log,
                    pass_fds=[write],
                )
            os.close(write)
            self.answers = os.fdopen(read, encoding="utf-8")
        assert self.worker.stdin is not None and self.answers is not None
        self.worker.stdin.write((json.dumps({**request, "env": self.env}) + "\n").encode())
        self.worker.stdin.flush()
        ready, _, _ = select.select([self.answers], [], [], BLOCK_TIMEOUT)
        line = self.answers.readline() if ready else ""
        if not line:
            self.worker.kill()
            raise SnippetError(
                f"the Python worker gave no answer in {BLOCK_TIMEOUT:.0f} s{self._tail(self.worker_log)}"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    # Shell: bash with the page's environment; exports carry over to the next blocks.
    def _shell(self, block: Block) -> None:
        if LONG_RUNNING.search(block.code):
            raise SnippetError(
                f"{block.where}: this block keeps running: mark it <!-- snippet: server --> or skip it with a reason"
            )
        env_file = self.workdir / ".snippet-env"
        script = SHELL_PREAMBLE + self._localized(block.code) + f'\nenv -0 > "{env_file}"\n'
        try:
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=self.workdir,
                env=self.env,
                capture_output=True,
                timeout=BLOCK_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SnippetError(f"{block.where}: still running after {BLOCK_TIMEOUT:.0f} s") from exc
        output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        if done.returncode != 0:
            raise SnippetError(f"{block.where}: the block exited with {done.returncode}:\n{output}")
        statuses = [int(line.split()[1]) for line in output.splitlines() if line.startswith(STATUS_MARK)]
        if block.statuses:
            unexpected = [status for status in statuses if status not in block.statuses]
            missing = [status for status in block.statuses if status not in statuses]
            if unexpected or missing:
                raise SnippetError(f"{block.where}: expected the statuses {block.statuses}, got {statuses}:\n{output}")
        elif any(status >= 400 for status in statuses):
            raise SnippetError(
                f"{block.where}: a request failed (statuses {statuses}); mark a block that shows an error "
                f"with <!-- snippet: status N -->:\n{output}"
            )
        exported = env_file.read_bytes().split(b"\0")
        self.env = dict(item.decode().split("=", 1) for item in exported if b"=" in item)

    # Servers: a block's, or relaygate serve on the default port for a block that talks to it.
    def _server(self, block: Block) -> None:
        command = block.code.strip().replace("./scripts/serve", "relaygate serve")
        port = _free_port()
        found = _PORT_FLAG.search(command)
        if found:
            documented = int(found.group(1))
            command = _PORT_FLAG.sub(f"--port {port}", command)
        elif "relaygate serve" in command:  # the flag goes right after the command, before any comment
            documented, command = DEFAULT_PORT, command.replace("relaygate serve", f"relaygate serve --port {port}", 1)
        elif re.search(r"\buvicorn\b", command):
            documented, command = UVICORN_PORT, re.sub(r"\buvicorn\b", f"uvicorn --port {port}", command, count=1)
        else:
            raise SnippetError(f"{block.where}: a server block names its port with --port")
        self._start(self._localized(command), documented, port, default=False, where=block.where)

    def _start(self, command: str, documented: int, port: int, *, default: bool, where: str) -> None:
        if documented in self.servers:
            self.servers.pop(documented).stop()
        log = self.workdir / f".server-{documented}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, stopped as one
            )
        server = Server(process, port, log, default)
        self.servers[documented] = server
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise SnippetError(f"{where}: the server exited with {process.returncode}:{self._tail(log)}")
            try:
                # An HTTP answer, not just a connection: with --workers the parent listens before any worker
                # is up. Any status will do (a host app may have no /health).
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/health")
                connection.getresponse().read()
                connection.close()
                return
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise SnippetError(f"{where}: nothing listens on the server's port{self._tail(log)}") from None
                time.sleep(0.05)

    def _localized(self, code: str) -> str:
        """The block with the page's ports replaced by the servers' real ones, starting the default one if needed."""
        mentions_default = re.search(rf"(127\.0\.0\.1|localhost):{DEFAULT_PORT}\b", code)
        if mentions_default and DEFAULT_PORT not in self.servers:
            port = _free_port()
            self._start(f"relaygate serve --port {port}", DEFAULT_PORT, port, default=True, where="(runner)")
        for documented, server in self.servers.items():
            code = re.sub(rf"(127\.0\.0\.1|localhost):{documented}\b", f"127.0.0.1:{server.port}", code)
        if re.search(rf"(127\.0\.0\.1|localhost):{OTLP_HTTP_PORT}\b", code):
            if self.collector is None:
                self.collector = OtlpReceiver().start()
            code = re.sub(rf"https?://(127\.0\.0\.1|localhost):{OTLP_HTTP_PORT}\b", self.collector.endpoint, code)
        return code

    @staticmethod
    def _tail(log: Path) -> str:
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n--- its output ---\n" + "\n".join(text.splitlines()[-40:]) if text else ""


def _base_env(workdir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in CLEARED and not key.startswith(CLEARED_PREFIXES) and not key.startswith("PYTEST_")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(workdir)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
