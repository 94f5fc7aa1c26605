"""The gateway's life: start-up, shutdown and what a host that forgets them is told."""

from __future__ import annotations

import logging

import httpx
import pytest

from relaygate import Gateway
from relaygate.settings import ProviderSettings, Settings

pytestmark = pytest.mark.anyio

CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "Hi"}]}


async def test_nested_lifespans_share_one_start_and_the_last_exit_shuts_down() -> None:
    gateway = Gateway()
    async with gateway.lifespan():
        assert gateway.started
        async with gateway.lifespan():
            assert gateway.started
        assert gateway.started, "an inner exit must not close pools another host still uses"
    assert not gateway.started


async def test_serving_before_start_up_works_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    gateway = Gateway()
    transport = httpx.ASGITransport(app=gateway.app)
    with caplog.at_level(logging.WARNING, logger="relaygate"):
        async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
            first = await client.post("/v1/chat/completions", json=CHAT)
            second = await client.post("/v1/chat/completions", json=CHAT)
    assert first.status_code == second.status_code == 200
    warnings = [r for r in caplog.records if "before its start-up ran" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_failed_start_up_leaves_nothing_open() -> None:
    class Failing(Exception):
        pass

    gateway = Gateway(Settings(providers={"up": ProviderSettings(kind="openai", base_url="http://127.0.0.1:9/v1")}))
    events: list[str] = []
    up, mock = gateway.providers["up"], gateway.providers["mock"]

    async def start_up() -> None:
        events.append("start up")

    async def close_up() -> None:
        events.append("close up")

    async def fail() -> None:
        raise Failing()

    up.start = start_up  # type: ignore[method-assign]
    up.aclose = close_up  # type: ignore[method-assign]
    mock.start = fail  # type: ignore[method-assign]
    with pytest.raises(Failing):
        async with gateway.lifespan():
            pass
    assert events == ["start up", "close up"] and not gateway.started


async def test_the_asgi_lifespan_protocol_starts_and_stops_the_gateway() -> None:
    gateway = Gateway()
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, str]] = []
    started_when_complete: list[bool] = []

    async def receive() -> dict[str, str]:
        return messages.pop(0)

    async def send(message: dict[str, str]) -> None:
        sent.append(message)
        started_when_complete.append(gateway.started)

    await gateway.app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert started_when_complete == [True, False]
