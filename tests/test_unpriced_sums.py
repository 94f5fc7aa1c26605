"""Sums over calls without a known price, and calls refused before routing (issue 14 item 14), through the
whole stack on SQLite and PostgreSQL: a sum over unpriced calls only is ``null``, a mixed one says how many
calls had no price, and refusals before routing are counted but belong to no model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from tests.conftest import KEY_A, make_settings
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

PRICED = "upstream/gpt-4o"
UNPRICED = "upstream/house-model-without-a-price"
WINDOW = {"period": "last_day"}


@pytest.fixture
async def client(upstream_url: str, database_url: str, fake_upstream: FakeOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(make_settings(upstream_url, database=database_url))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        headers = {"authorization": f"Bearer {KEY_A}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            yield client
            assert gateway.ledger is not None
            await gateway.ledger.writer.flush()


async def chat(client: httpx.AsyncClient, model: str, thread: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    response = await client.post("/v1/chat/completions", json=body, headers={"x-thread-id": thread})
    assert response.status_code == 200, response.text


async def settled(client: httpx.AsyncClient, requests: int) -> dict[str, Any]:
    for _ in range(200):
        total: dict[str, Any] = (await client.post("/usage/total", json=WINDOW)).json()
        if total["requests"] >= requests:
            return total
    raise AssertionError(f"the ledger holds {total['requests']} calls, not {requests}")


async def test_unpriced_sums_are_null_and_mixed_ones_count_their_unpriced_calls(client: httpx.AsyncClient) -> None:
    await chat(client, UNPRICED, "only-unpriced")
    await chat(client, UNPRICED, "only-unpriced")
    await chat(client, PRICED, "mixed")
    await chat(client, UNPRICED, "mixed")
    total = await settled(client, 4)
    assert total["unpriced_requests"] == 3 and total["total_cost"] > 0

    threads = {t["id"]: t for t in (await client.post("/threads", json={"limit": 10, "offset": 0})).json()["threads"]}
    assert threads["only-unpriced"]["total_cost"] is None
    assert threads["only-unpriced"]["unpriced_requests"] == 2
    assert threads["mixed"]["total_cost"] == pytest.approx(total["total_cost"])
    assert threads["mixed"]["unpriced_requests"] == 1

    only = (await client.get("/threads/only-unpriced/cost")).json()
    assert only["total_cost"] is None and only["unpriced_requests"] == 2
    mixed = (await client.get("/threads/mixed/cost")).json()
    assert mixed["total_cost"] > 0 and mixed["unpriced_requests"] == 1

    models = {m["model"]: m for m in (await client.post("/usage/models", json=WINDOW)).json()["models"]}
    unpriced = next(m for name, m in models.items() if name.endswith("house-model-without-a-price"))
    assert unpriced["total_cost"] is None and unpriced["unpriced_requests"] == 3
    priced = next(m for name, m in models.items() if name.endswith("gpt-4o"))
    assert priced["total_cost"] > 0 and priced["unpriced_requests"] == 0

    summary = (await client.post("/analytics/summary", json={**WINDOW, "groupBy": ["model"]})).json()
    by_model = {row["model"]: row for row in summary["summary"]}
    assert by_model["house-model-without-a-price"]["total_cost"] is None
    series = (await client.post("/analytics", json={**WINDOW, "min_unit": "day"})).json()["rows"]
    assert series[0]["cost"] == series[0]["total_cost"] and series[0]["unpriced_requests"] == 3


async def test_calls_refused_before_routing_belong_to_no_model(client: httpx.AsyncClient) -> None:
    await chat(client, PRICED, "t")
    assert (await client.post("/v1/chat/completions", content=b"{not json")).status_code == 400
    unknown = {"model": "nowhere/none", "messages": [{"role": "user", "content": "Hi"}]}
    assert (await client.post("/v1/chat/completions", json=unknown)).status_code in (400, 404)
    total = await settled(client, 3)
    assert total["errors"] == 2
    models = (await client.post("/usage/models", json=WINDOW)).json()["models"]
    assert [m["model"].rsplit("/", 1)[-1] for m in models] == ["gpt-4o"]
    for group_by in (["model"], ["provider"], ["provider", "model"]):
        summary = (await client.post("/analytics/summary", json={**WINDOW, "groupBy": group_by})).json()
        for row in summary["summary"]:
            assert all(row.get(dim) for dim in group_by), (group_by, row)
        assert sum(row["requests"] for row in summary["summary"]) == 1
