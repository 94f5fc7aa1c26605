"""The gateway mounted at ``/llm`` in the FastAPI and Starlette examples, as a host app would run it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from examples import fastapi_app, starlette_app
from relaygate import Gateway
from relaygate.settings import ProviderSettings, Settings
from relaygate.upstream import UpstreamClient, UpstreamRequest, UpstreamResponse
from tests.asgi import Exchange, http_scope, run
from tests.servers import serve_in_thread

pytestmark = pytest.mark.anyio

EXAMPLES = [fastapi_app, starlette_app]
CHUNK_DELAY = 0.05
QUESTION = "one two three four five"
# The mock's reply, streamed word by word with CHUNK_DELAY before each word.
REPLY = "relaygate mock reply to: " + QUESTION
CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": QUESTION}]}
GREETING = {"message": "hello from the host app"}


def example_id(example: ModuleType) -> str:
    return example.__name__.rpartition(".")[2]


def make_gateway() -> Gateway:
    mock = ProviderSettings(kind="mock", chunk_delay=CHUNK_DELAY)
    return Gateway(Settings(providers={"mock": mock}, database="sqlite:///:memory:"))


def data_lines(text: str) -> list[str]:
    return [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]


def content_of(payload: str) -> str:
    choices = orjson.loads(payload)["choices"]
    return str(choices[0]["delta"].get("content") or "") if choices else ""


@pytest.fixture(scope="module", params=EXAMPLES, ids=example_id)
def host_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The example app on a real uvicorn on 127.0.0.1, which runs the host's lifespan (and so the gateway's)."""
    example: ModuleType = request.param
    with serve_in_thread(example.build_app(make_gateway())) as base_url:
        yield base_url


# Through a real server.


async def test_the_hosts_own_routes_and_the_gateway_both_answer(host_url: str) -> None:
    async with httpx.AsyncClient(base_url=host_url) as client:
        hello = await client.get("/hello")
        assert hello.status_code == 200 and hello.json() == GREETING, "the host's own start-up ran"
        health = await client.get("/llm/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        chat = await client.post("/llm/v1/chat/completions", json=CHAT)
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["content"] == REPLY
    assert chat.headers["x-provider-name"] == "mock" and chat.headers["x-model-name"] == "echo"


async def test_a_stream_through_the_mount_arrives_as_it_is_made(host_url: str) -> None:
    arrivals: list[tuple[float, str]] = []
    async with (
        httpx.AsyncClient(base_url=host_url) as client,
        client.stream("POST", "/llm/v1/chat/completions", json={**CHAT, "stream": True}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                arrivals.append((time.perf_counter(), line.removeprefix("data: ")))
    assert arrivals[-1][1] == "[DONE]" and [data for _, data in arrivals].count("[DONE]") == 1
    assert "".join(content_of(data) for _, data in arrivals[:-1]) == REPLY
    first_content = next(at for at, data in arrivals[:-1] if content_of(data))
    # The mock waits CHUNK_DELAY before each of the reply's 9 words: 8 waits lie between the first word
    # and [DONE]. A buffered stream would deliver them all at once.
    assert arrivals[-1][0] - first_content >= 4 * CHUNK_DELAY


async def test_the_project_prefix_and_the_trace_headers_work_under_the_mount(host_url: str) -> None:
    async with httpx.AsyncClient(base_url=host_url) as client:
        response = await client.post("/llm/some-project/v1/chat/completions", json=CHAT, headers={"x-run-id": "run-1"})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == REPLY
        assert len(response.headers["x-trace-id"]) == 32
        assert response.headers["x-run-id"] == "run-1"
        generated = await client.post("/llm/some-project/v1/chat/completions", json=CHAT)
        assert generated.headers["x-run-id"] and generated.headers["x-trace-id"] != response.headers["x-trace-id"]
        # The project really is read from the path below the mount: it is checked against the header.
        mismatch = await client.post(
            "/llm/some-project/v1/chat/completions", json=CHAT, headers={"x-project-id": "other-project"}
        )
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["code"] == "project_mismatch"


@pytest.mark.parametrize(("method", "path"), [("POST", "/llm/v1/nope"), ("GET", "/llm/nope")])
async def test_an_unknown_path_under_the_mount_is_an_openai_shaped_404(host_url: str, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=host_url) as client:
        response = await client.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "x-trace-id" in response.headers
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "unknown_url"


# In-process, message by message: the host's Mount sets root_path and the gateway strips it.


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
async def test_stream_messages_through_the_host_come_in_order_with_whole_events(example: ModuleType) -> None:
    gateway = make_gateway()
    host = example.build_app(gateway)
    scope = http_scope("/llm/v1/chat/completions", headers={"content-type": "application/json"})
    assert scope["root_path"] == "" and scope["path"] == "/llm/v1/chat/completions"
    async with gateway.lifespan():
        with anyio.fail_after(5):
            exchange = await run(host, scope, Exchange(orjson.dumps({**CHAT, "stream": True})))
    start, *bodies = exchange.messages
    assert start["type"] == "http.response.start" and exchange.status == 200
    assert exchange.headers["content-type"].startswith("text/event-stream")
    assert "x-trace-id" in exchange.headers and "x-run-id" in exchange.headers
    assert all(message["type"] == "http.response.body" for message in bodies)
    assert all(message["more_body"] is True for message in bodies[:-1])
    assert len(bodies[:-1]) >= 5, "events are relayed one by one, not gathered into one body"
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    for chunk in exchange.chunks:
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n"), chunk
    assert exchange.chunks[-1] == b"data: [DONE]\n\n"
    assert "".join(content_of(data) for data in data_lines(exchange.text)[:-1]) == REPLY


# The host's lifespan runs the gateway's start-up and shutdown.


class RecordingClient:
    """A provider's upstream client that notes when the gateway starts and closes it."""

    def __init__(self, inner: UpstreamClient, events: list[str]) -> None:
        self.inner = inner
        self.events = events

    async def start(self) -> None:
        self.events.append("start")
        await self.inner.start()

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        return await self.inner.send(request)

    async def aclose(self) -> None:
        self.events.append("aclose")
        await self.inner.aclose()


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_the_host_starts_the_gateway_and_stops_it_when_it_stops(example: ModuleType) -> None:
    gateway = make_gateway()
    events: list[str] = []
    for provider in gateway.providers.values():
        provider.client = RecordingClient(provider.client, events)
    app = example.build_app(gateway)
    assert events == []
    with TestClient(app) as client:
        assert events == ["start"]
        assert client.get("/hello").json() == GREETING
        chat = client.post("/llm/v1/chat/completions", json=CHAT)
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == REPLY
        assert events == ["start"]
    assert events == ["start", "aclose"]


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_the_default_build_uses_the_embedded_config(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert isinstance(example.app, Starlette)  # what `uvicorn examples.<name>:app` serves
    monkeypatch.delenv("RELAYGATE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./relaygate.yaml
    app: Any = example.build_app()
    with TestClient(app) as client:
        chat = client.post("/llm/v1/chat/completions", json=CHAT)
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["content"] == REPLY
