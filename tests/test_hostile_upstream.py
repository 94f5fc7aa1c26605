"""A provider that fails on purpose, through the whole stack and ``relaygate serve``: transport errors that name
the upstream and say what happened (never its address), streams answered with a page instead of events, and a
client that leaves a call that is not streamed.

The provider is ``tests/fakes/hostile_server.py``; a closed port stands in for an upstream that refuses.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from relaygate import Gateway, get_context
from relaygate.context import RequestContext
from relaygate.settings import ProviderSettings, RetrySettings, Settings
from tests.asgi import Exchange, http_scope, run
from tests.fakes.hostile_server import HostileProvider
from tests.servers import free_port, relaygate_serve, serve_in_thread

pytestmark = pytest.mark.anyio

HI = [{"role": "user", "content": "Hi"}]
KEY = "sk-hostile-upstream-test-key"


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[tuple[HostileProvider, str]]:
    fake = HostileProvider()
    with serve_in_thread(fake) as url:
        yield fake, url


@pytest.fixture
def hostile(hostile_server: tuple[HostileProvider, str]) -> tuple[HostileProvider, str]:
    fake, url = hostile_server
    fake.requests.clear()
    fake.hung_up.clear()
    fake.answered.clear()
    return fake, url


def settings(url: str, **overrides: Any) -> Settings:
    provider = {"kind": "openai", "base_url": url + "/openai/v1", "api_key": KEY}
    providers = {
        "openai": ProviderSettings(**provider),
        "claude": ProviderSettings(kind="anthropic", base_url=url + "/anthropic/v1", api_key=KEY),
        "google": ProviderSettings(kind="gemini", base_url=url + "/gemini/v1beta", api_key=KEY),
        "hasty": ProviderSettings(**provider, timeouts={"read": 0.3}),
        "closed": ProviderSettings(**{**provider, "base_url": f"http://127.0.0.1:{free_port()}/v1"}),
    }
    return Settings(providers=providers, retry=RetrySettings(max_attempts=1, backoff=0.001), database=None, **overrides)


async def serving(gateway_settings: Settings) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    gateway = Gateway(gateway_settings)
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as client:
            yield gateway, client


async def exchange(gateway: Gateway, body: dict[str, Any]) -> tuple[Exchange, RequestContext]:
    scope = http_scope("/v1/chat/completions", headers={"content-type": "application/json"})
    done = await run(gateway.app, scope, Exchange(orjson.dumps(body)))
    return done, get_context(scope)


def last_event(text: str) -> dict[str, Any]:
    event: dict[str, Any] = orjson.loads(text.strip().split("\n\n")[-1].removeprefix("data: "))
    return event


# --- item 2: transport errors name the upstream and say what happened -------------------------------------


async def test_a_refused_connection_names_the_provider_and_keeps_the_address_in_the_log(
    hostile: tuple[HostileProvider, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, url = hostile
    async for gateway, client in serving(settings(url)):
        port = gateway.providers["closed"].base_url.split(":")[2].split("/")[0]
        with caplog.at_level(logging.WARNING, logger="relaygate"):
            response = await client.post("/v1/chat/completions", json={"model": "closed/gpt-4o", "messages": HI})
    error = response.json()["error"]
    assert response.status_code == 502 and error["code"] == "upstream_connection_error"
    assert error["message"] == "upstream 'closed' refused the connection."
    assert "127.0.0.1" not in response.text and port not in response.text
    logged = [r.getMessage() for r in caplog.records if r.name == "relaygate.upstream"]
    assert any(f"127.0.0.1:{port}" in line and "refused the connection" in line for line in logged), logged
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "relaygate.upstream")


async def test_an_answer_cut_off_mid_body_says_so_and_not_that_it_could_not_be_reached(
    hostile: tuple[HostileProvider, str],
) -> None:
    _, url = hostile
    async for _, client in serving(settings(url)):
        whole = await client.post("/v1/chat/completions", json={"model": "openai/cut", "messages": HI})
        stream = await client.post("/v1/chat/completions", json={"model": "openai/cut", "messages": HI, "stream": True})
    error = whole.json()["error"]
    assert whole.status_code == 502 and error["code"] == "upstream_connection_error"
    assert error["message"].startswith("upstream 'openai' was cut off mid-answer")
    assert "reach" not in error["message"] and "127.0.0.1" not in whole.text
    # The stream had started: its last event says what happened.
    assert stream.status_code == 200 and "Hello from the hostile upstream" in stream.text
    event = last_event(stream.text)["error"]
    assert event["message"].startswith("upstream 'openai' was cut off mid-answer")
    assert "127.0.0.1" not in stream.text


async def test_a_read_timeout_names_the_provider_and_the_setting(hostile: tuple[HostileProvider, str]) -> None:
    _, url = hostile
    async for _, client in serving(settings(url)):
        response = await client.post("/v1/chat/completions", json={"model": "hasty/slow-2", "messages": HI})
    error = response.json()["error"]
    assert response.status_code == 504 and error["code"] == "upstream_timeout"
    assert error["message"] == "upstream 'hasty' timed out: nothing arrived for 0.3 s (timeouts.read)."


# --- item 7: a streamed request answered with a body that is no stream ------------------------------------


@pytest.mark.parametrize("provider", ["openai", "claude", "google"])
@pytest.mark.parametrize("model", ["html", "json-error", "empty"])
async def test_a_stream_answered_with_a_page_is_a_502_recorded_as_an_error(
    hostile: tuple[HostileProvider, str], provider: str, model: str
) -> None:
    _, url = hostile
    async for gateway, _ in serving(settings(url)):
        done, ctx = await exchange(gateway, {"model": f"{provider}/{model}", "messages": HI, "stream": True})
    error = orjson.loads(done.text)["error"]
    assert done.status == 502 and error["code"] == "upstream_invalid_stream"
    assert "[DONE]" not in done.text
    assert error["message"].startswith(f"upstream '{provider}' answered a streamed request with a body that is not")
    assert ctx.error == "upstream_invalid_stream" and ctx.status == 502
    assert [(a.status, a.error) for a in ctx.attempts] == [(502, "upstream_invalid_stream")]
    if model == "json-error":
        # The provider's own words are kept, without the key it echoed.
        assert "stream not supported for key " in error["message"] and error["message"].endswith("[redacted]")
        assert KEY not in done.text


async def test_a_stream_answered_with_a_page_falls_back_to_the_next_target(
    hostile: tuple[HostileProvider, str],
) -> None:
    fake, url = hostile
    models = {"smart": {"targets": ["openai/html", "claude/fine"]}}
    async for gateway, _ in serving(settings(url, models=models)):
        done, ctx = await exchange(gateway, {"model": "smart", "messages": HI, "stream": True})
    assert done.status == 200 and done.headers["x-provider-name"] == "claude"
    assert "Hello from the hostile upstream" in done.text and done.text.endswith("data: [DONE]\n\n")
    assert [(a.provider, a.status) for a in ctx.attempts] == [("openai", 502), ("claude", 200)]
    assert fake.models_seen() == ["html", "fine"]


# --- item 8: a client that leaves a call that is not streamed ----------------------------------------------

CONFIG = """\
providers:
  openai: {{kind: openai, base_url: "{url}/openai/v1", api_key: {key}}}
database: sqlite:///{db}
retry: {{max_attempts: 3, backoff: 0.01}}
"""


@pytest.mark.parametrize("endpoint", ["chat", "embeddings"])
def test_a_client_leaving_a_whole_call_cancels_it_upstream_and_is_recorded(
    tmp_path: Path, hostile: tuple[HostileProvider, str], endpoint: str
) -> None:
    fake, url = hostile
    db = tmp_path / "ledger.db"
    config = tmp_path / "relaygate.yaml"
    config.write_text(CONFIG.format(url=url, key=KEY, db=db))
    if endpoint == "chat":
        path, body = "/v1/chat/completions", {"model": "openai/slow-4", "messages": HI}
    else:
        path, body = "/v1/embeddings", {"model": "openai/slow-4", "input": "Hi"}
    with relaygate_serve(["--config", str(config)], cwd=tmp_path) as base:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(base + path, json=body, timeout=0.5)
        deadline = time.monotonic() + 3
        while not fake.hung_up and time.monotonic() < deadline:
            time.sleep(0.02)
        # The gateway hung up on the provider as soon as the client had gone: no answer, and no retry.
        assert fake.hung_up == ["slow-4"] and fake.answered == []
        time.sleep(0.3)
        assert fake.models_seen() == ["slow-4"]
    with sqlite3.connect(db) as ledger:
        rows = ledger.execute("SELECT model, status, error FROM calls").fetchall()
    assert rows == [("slow-4", 499, "client_disconnected")]


class _RudeSocket:
    """A TCP server on 127.0.0.1 that reads a request's head, then resets the connection (``reset``) or
    closes it without a word (``close``): what no HTTP server does on purpose."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if self.mode == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("reset", "upstream 'rude' reset the connection."),
        ("close", "upstream 'rude' closed the connection without answering."),
    ],
)
async def test_a_reset_or_closed_connection_says_so(mode: str, said: str) -> None:
    rude = _RudeSocket(mode)
    try:
        provider = ProviderSettings(kind="openai", base_url=f"http://127.0.0.1:{rude.port}/v1", api_key=KEY)
        gateway_settings = Settings(providers={"rude": provider}, retry=RetrySettings(max_attempts=1), database=None)
        async for _, client in serving(gateway_settings):
            response = await client.post("/v1/chat/completions", json={"model": "rude/gpt-4o", "messages": HI})
    finally:
        rude.close()
    error = response.json()["error"]
    assert response.status_code == 502 and error["code"] == "upstream_connection_error"
    assert error["message"] == said and str(rude.port) not in response.text
