"""What a gateway process and the recorder process import: only what their configuration uses (issue 20's memory).

Each check runs a fresh interpreter, as ``relaygate serve`` and the recorder start: modules imported by this test
process would hide what the code under test imports. The MCP SDK, the Redis client, Jinja2 (the dashboard's pages),
jsonschema (the ``json_schema`` guard) and httpx (MCP's client) cost tens of MiB in every gateway process and are
imported only when their feature is configured or first used; the recorder imports neither the settings (pydantic)
nor the gateway.
"""

from __future__ import annotations

import json
import pickle
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from relaygate.recorder import RecorderConfig
from relaygate.telemetry.otlp import Otlp
from tests.conftest import KEY_A, UPSTREAM_KEY

LAZY = ["mcp", "redis", "jinja2", "jsonschema", "httpx"]

# Builds the gateway of the config given as JSON, runs its start-up, one chat call through the whole stack (a
# raw ASGI call: an HTTP client would import httpx itself) and /mcp, its shutdown; prints what it imported.
SERVE = """
import asyncio, json, sys

from relaygate import Gateway
from relaygate.settings import Settings

config, key = json.loads(sys.argv[1]), sys.argv[2]


async def call(gateway, method, path, body):
    sent = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"authorization", b"Bearer " + key.encode()), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("gateway", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if not messages:
            await asyncio.Event().wait()  # the client stays until the answer is sent, as a server's would
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    await gateway(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def main():
    gateway = Gateway(Settings.model_validate(config))
    async with gateway.lifespan():
        chat = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        answers = {
            "chat": await call(gateway, "POST", "/v1/chat/completions", json.dumps(chat).encode()),
            "mcp": await call(gateway, "POST", "/mcp", b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'),
        }
    modules = sorted({name.split(".")[0] for name in sys.modules})
    print(json.dumps({"answers": {k: [s, b.decode()] for k, (s, b) in answers.items()}, "modules": modules}))


asyncio.run(main())
"""


def _served(config: dict[str, Any], cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SERVE, json.dumps(config), KEY_A], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _config(upstream_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"upstream": {"kind": "openai", "base_url": upstream_url, "api_key": UPSTREAM_KEY}},
        "projects": [{"id": "proj-a", "keys": [KEY_A], **extra.pop("project", {})}],
        "telemetry": {"enabled": False},
        **extra,
    }


@pytest.mark.usefixtures("fake_upstream")
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"database": None}, id="proxy-only"),
        pytest.param(
            {
                "database": "sqlite:///ledger.db",
                "guards": {
                    "no_secrets": {"type": "regex", "stage": "input", "action": "block",
                                   "parameters": {"patterns": ["sk-[A-Za-z0-9]{20,}"]}},
                    "no_pii": {"type": "pii", "stage": "input", "action": "redact"},
                },
                "project": {"guards": ["no_secrets", "no_pii"], "limits": {"requests_per_minute": 1000}},
            },
            id="every-layer",
        ),
    ],
)  # fmt: skip
def test_a_gateway_imports_none_of_what_its_config_does_not_use(
    upstream_url: str, tmp_path: Path, extra: dict[str, Any]
) -> None:
    result = _served(_config(upstream_url, **extra), tmp_path)
    assert result["answers"]["chat"][0] == 200, result["answers"]
    # /mcp without MCP servers: the gateway's own 404, without the SDK.
    status, body = result["answers"]["mcp"]
    assert status == 404 and json.loads(body)["error"]["code"] == "mcp_server_not_found"
    assert [name for name in LAZY if name in result["modules"]] == []
    assert "relaygate" in result["modules"]


@pytest.mark.usefixtures("fake_upstream")
def test_each_lazy_module_comes_with_the_feature_that_uses_it(upstream_url: str, tmp_path: Path) -> None:
    schema = {"type": "object"}
    config = _config(
        upstream_url,
        database=None,
        guards={"json": {"type": "json_schema", "stage": "output", "parameters": {"schema": schema}}},
        mcp_servers={"down": {"url": "http://127.0.0.1:9/mcp"}},
        counters="redis://127.0.0.1:9/0",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys\n"
            "from relaygate import Gateway\n"
            "from relaygate.settings import Settings\n"
            "gateway = Gateway(Settings.model_validate(json.loads(sys.argv[1])))\n"
            "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))",
            json.dumps(config),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.splitlines()[-1])
    # Built, not started: the MCP SDK comes at start-up (the sessions and /mcp's server), the rest with the gateway.
    assert [name for name in ("jsonschema", "redis") if name not in modules] == []


def test_the_recorder_process_imports_neither_the_settings_nor_the_gateway(tmp_path: Path) -> None:
    # The real recorder process (python -m relaygate.recorder FD), with a ledger and span export to set up, told to
    # stop at once; -X importtime lists every module it imported.
    ours, theirs = socket.socketpair()
    child = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "relaygate.recorder", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    theirs.close()
    conn = Connection(ours.detach())
    try:
        config = RecorderConfig(
            database=f"sqlite:///{tmp_path / 'ledger.db'}",
            traces_endpoint="http://127.0.0.1:9/v1/traces",
            metrics_endpoint="http://127.0.0.1:9/v1/metrics",
            otlp=Otlp(protocol="http/protobuf", headers={"authorization": "Bearer collector-token"}),
        )
        conn.send_bytes(pickle.dumps(config))
        conn.send_bytes(pickle.dumps(("stop",)))
        assert pickle.loads(conn.recv_bytes())[0] == "stopped"
        _, errors = child.communicate(timeout=60)
    finally:
        conn.close()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, errors
    imported = {line.rsplit("|", 1)[1].strip() for line in errors.splitlines() if line.startswith("import time:")}
    # What it needs: the store, the OTLP span and metric exporters.
    needed = {"relaygate.store", "relaygate.recorder.sink", "relaygate.recorder.metrics"}
    assert needed | {"opentelemetry.exporter.otlp.proto.http.metric_exporter"} <= imported
    heavy = {"pydantic", "relaygate.settings", "relaygate.gateway", "relaygate.context", "relaygate.telemetry.spans",
             "starlette", *LAZY}  # fmt: skip
    assert sorted(heavy & imported) == []


def test_the_recorders_otlp_options_are_the_settings_as_plain_values() -> None:
    from relaygate.settings import TelemetrySettings

    settings = TelemetrySettings(endpoint="http://collector:4318", protocol="grpc", headers={"x-token": "secret"})
    otlp = Otlp.of(settings)
    assert otlp == Otlp(endpoint="http://collector:4318", protocol="grpc", headers={"x-token": "secret"})
    assert "secret" not in repr(otlp)
    assert pickle.loads(pickle.dumps(otlp)) == otlp
