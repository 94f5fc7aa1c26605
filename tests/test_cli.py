"""The relaygate command, run as a user runs it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relaygate.cli import main
from relaygate.keys import KeyRing, hash_key
from tests.otlp import OtlpReceiver
from tests.servers import free_port, relaygate_serve


def test_keys_new_prints_a_key_and_its_config_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "new"]) == 0
    key, line = capsys.readouterr().out.split()
    assert key.startswith("rg-") and len(key) > 40
    assert line == hash_key(key)
    assert KeyRing.from_projects({"p": [line]}).lookup(key) is not None
    assert main(["keys", "new"]) == 0
    assert capsys.readouterr().out.split()[0] != key


def test_keys_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "hash", "secret"]) == 0
    assert capsys.readouterr().out.strip() == hash_key("secret")


def test_check_summarises_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("providers:\n  up:\n    kind: openai\n    base_url: http://x/v1\nprojects:\n  - id: p1\n")
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "up (openai)" in out and "mock (mock)" in out and "p1" in out


def test_serve_refuses_a_bad_config_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "providers:\n  up:\n    kind: openai\n    base_url: http://x/v1\n    api_key: ${SURELY_UNSET_VAR}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "relaygate.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "providers.up.api_key" in done.stderr and "SURELY_UNSET_VAR" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_serve_on_the_embedded_default_answers_the_readme_request(tmp_path: Path) -> None:
    # The quickstart: no config, no provider key, the mock provider answers.
    env = {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "GEMINI_API_KEY": "", "RELAYGATE_CONFIG": ""}
    with relaygate_serve([], env=env, cwd=tmp_path) as base_url:
        response = httpx.post(
            base_url + "/v1/chat/completions",
            json={"model": "mock/echo", "messages": [{"role": "user", "content": "Hello"}]},
        )
        models = httpx.get(base_url + "/v1/models")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "relaygate mock reply to: Hello"
    assert {m["id"] for m in models.json()["data"]} == {"mock/echo", "mock/text-embedding", "mock/image"}


def test_serve_with_workers_and_root_path(tmp_path: Path) -> None:
    config = tmp_path / "relaygate.yaml"
    config.write_text("projects:\n  - id: p1\n    keys: [k-123]\n")
    with relaygate_serve(["--config", str(config), "--workers", "2", "--root-path", "/llm"], cwd=tmp_path) as base_url:
        headers = {"Authorization": "Bearer k-123"}
        body = {"model": "mock/echo", "messages": [{"role": "user", "content": "Hi"}]}
        # uvicorn's --root-path is for a reverse proxy that strips the prefix: the gateway then sees
        # path "/llm/p1/v1/..." with root_path "/llm", and routes below the prefix.
        stripped = httpx.post(base_url + "/v1/chat/completions", json=body, headers=headers)
        prefixed = httpx.post(base_url + "/p1/v1/chat/completions", json=body, headers=headers)
        refused = httpx.post(base_url + "/v1/chat/completions", json=body)
    assert stripped.status_code == 200 and prefixed.status_code == 200
    assert refused.status_code == 401


def _serve_log(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    """What ``relaygate serve`` printed from its start to its shutdown."""
    port = free_port()
    command = [sys.executable, "-m", "relaygate.cli", "serve", "--port", str(port), *args]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **env}, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
        finally:
            process.terminate()
            process.wait(10)
    return log.read_text()


QUIET_OTEL = {name: "" for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_METRICS_EXPORTER")}


def test_the_start_up_log_says_that_spans_and_metrics_go_nowhere_with_one_worker(tmp_path: Path) -> None:
    log = _serve_log(tmp_path, {**QUIET_OTEL, "RELAYGATE_CONFIG": ""})
    assert "telemetry: spans and metrics go nowhere: no OTLP endpoint is set" in log, log


def test_the_start_up_log_says_where_spans_and_metrics_go_without_credentials(tmp_path: Path) -> None:
    env = {
        **QUIET_OTEL,
        "RELAYGATE_CONFIG": "",
        "OTEL_METRICS_EXPORTER": "none",
    }
    with OtlpReceiver() as collector:
        # The receiver takes the spans, so that shutdown's flush is quick; only the log is read.
        host_and_port = collector.endpoint.removeprefix("http://")
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://collector:s3cret@{host_and_port}"
        logs = [_serve_log(tmp_path, env, "--workers", workers) for workers in ("1", "2")]
    for log in logs:
        assert "telemetry: spans go to http://***@127.0.0.1:" in log and "/v1/traces (OTLP http/protobuf)" in log, log
        assert "telemetry: metrics go nowhere (OTEL_METRICS_EXPORTER=none" in log, log
        assert "s3cret" not in log


def test_a_sigterm_to_the_whole_process_group_stops_serve_cleanly_with_every_call_written(tmp_path: Path) -> None:
    # systemd's stop (KillMode=control-group), timeout and `kill -- -PGID` signal the recorder too: it must
    # leave its stop to the gateway, which hands it everything queued first.
    config = tmp_path / "relaygate.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'ledger.db'}\nprojects:\n  - id: p1\n    keys: [k-123]\n")
    port = free_port()
    command = [sys.executable, "-m", "relaygate.cli", "serve", "--port", str(port), "--config", str(config)]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=tmp_path, env={**os.environ, **QUIET_OTEL}, stdout=out, stderr=out, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            body = {"model": "mock/echo", "messages": [{"role": "user", "content": "Hi"}]}
            headers = {"Authorization": "Bearer k-123"}
            for _ in range(20):
                sent = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=headers)
                assert sent.status_code == 200
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            # uvicorn shuts down gracefully, then raises the signal again for its exit status.
            assert process.wait(30) in (0, -signal.SIGTERM)
    text = log.read_text()
    assert "Application shutdown complete" in text and "recorder process exited" not in text, text
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("select count(*) from calls").fetchone()[0] == 20
