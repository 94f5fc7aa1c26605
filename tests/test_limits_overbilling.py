"""Budgets say why they refuse, and a provider billing beyond a call's reservation is seen, through the whole stack.

Model ``rude/<name>`` (the hostile fake) costs nothing for input and $100 per 1M output tokens. Its ``overbill``
model reports ten times the request's ``max_tokens`` as written: with ``max_tokens: 5`` the call reserves
$0.0005 and is billed $0.005.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from relaygate.limits.config import ProjectLimits
from relaygate.pricing import ModelPrice
from relaygate.settings import ProjectSettings, ProviderSettings, RetrySettings, Settings
from tests.conftest import KEY_A
from tests.fakes.hostile_server import HostileProvider
from tests.servers import serve_in_thread
from tests.test_telemetry import Recorded

pytestmark = pytest.mark.anyio

PRICE = ModelPrice(input=0, output=100)
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    with serve_in_thread(HostileProvider()) as url:
        yield url


def settings(hostile_url: str, database: str, limits: dict[str, Any]) -> Settings:
    return Settings(
        providers={"rude": ProviderSettings(kind="openai", base_url=hostile_url + "/openai/v1", api_key="sk-x")},
        projects=[ProjectSettings(id="proj-a", keys=[KEY_A], limits=ProjectLimits.model_validate(limits))],
        prices={"rude/overbill": PRICE, "rude/fine": PRICE},
        database=database,
        retry=RetrySettings(max_attempts=1),
    )


async def serving(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        headers = {"authorization": f"Bearer {KEY_A}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            yield client


async def test_a_budget_refusal_says_what_the_call_may_cost_and_what_is_left(hostile_url: str, tmp_path: Path) -> None:
    gateway = Gateway(settings(hostile_url, f"sqlite:///{tmp_path / 'l.db'}", {"usd_total": "0.02"}))
    async for client in serving(gateway):
        # No max_tokens: the worst case is the model's output cap (131,072 tokens), at $100 per 1M.
        refused = await client.post("/v1/chat/completions", json={"model": "rude/fine", "messages": HI})
        bounded = await client.post(
            "/v1/chat/completions", json={"model": "rude/fine", "messages": HI, "max_tokens": 5}
        )
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"
    message = refused.json()["error"]["message"]
    assert message.startswith("project proj-a: usd_total 0.02: this call may cost up to $13.1072 (its worst case")
    assert "and $0.02 of the budget is left. A lower max_tokens lowers the worst case." in message
    assert "reached" not in message, "nothing was spent"
    assert bounded.status_code == 200


async def test_a_spent_budget_still_says_it_is_reached(hostile_url: str, tmp_path: Path) -> None:
    gateway = Gateway(settings(hostile_url, f"sqlite:///{tmp_path / 'l.db'}", {"usd_total": "0.0005"}))
    async for client in serving(gateway):
        body = {"model": "rude/fine", "messages": HI, "max_tokens": 5}
        first, second = [await client.post("/v1/chat/completions", json=body) for _ in range(2)]
    assert first.status_code == 200
    assert second.json()["error"]["message"] == "project proj-a: usd_total 0.0005 reached."


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_provider_billing_beyond_the_reservation_is_recorded_at_what_it_billed_and_flagged(
    hostile_url: str, tmp_path: Path, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    recorded = Recorded()
    gateway = Gateway(
        settings(hostile_url, f"sqlite:///{tmp_path / 'l.db'}", {"usd_total": 1}),
        meter_provider=recorded.meter_provider,
    )
    body = {"model": "rude/overbill", "messages": HI, "max_tokens": 5, "stream": stream}
    async for client in serving(gateway):
        response = await client.post("/v1/chat/completions", json=body)
        fair = await client.post("/v1/chat/completions", json={**body, "model": "rude/fine"})
        assert gateway.ledger is not None and gateway.limiter is not None
        await gateway.ledger.writer.flush()
        calls = await gateway.ledger.store.calls_of_trace("proj-a", response.headers["x-trace-id"])
        fair_calls = await gateway.ledger.store.calls_of_trace("proj-a", fair.headers["x-trace-id"])
        limiter = gateway.limiter
        level = await limiter.counters.level(f"{limiter.prefix}:proj-a:project:usd_total:total", 0, limiter.clock())
    assert response.status_code == 200
    [call] = calls
    # Recorded at what the provider billed (50 tokens at $100 per 1M), not at the $0.0005 reserved.
    assert call.completion_tokens == 50 and call.cost_usd == pytest.approx(0.005)
    assert call.overbilled is True
    assert [c.overbilled for c in fair_calls] == [False]
    assert level == 5_000_000 + 500_000, "the budget counts what was billed"
    points = recorded.metric_points("relaygate.limits.overbilled")
    assert [
        (p.value, p.attributes["relaygate.route.provider"], p.attributes["gen_ai.request.model"]) for p in points
    ] == [(1, "rude", "overbill")]
    assert any("billed beyond the reservation" in r.getMessage() for r in caplog.records)
