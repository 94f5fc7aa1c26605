"""The ledger through the whole stack, on SQLite and on PostgreSQL: what calls cost, and every figure the
management API gives back about them.

The fake upstream answers every chat call with the same usage (11 prompt tokens of which 3 cached, 5
completion tokens), so the expected figures are sums of the costs the gateway itself reported to the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import httpx
import orjson
import pytest

from relaygate import Gateway
from relaygate.pricing import ModelPrice
from relaygate.settings import GuardSettings, ProjectSettings, RetrySettings, VirtualModelSettings
from tests.asgi import Exchange, http_scope, run
from tests.conftest import ADMIN_KEY, KEY_A, KEY_B, make_settings
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

# gpt-4o (USD per 1M: input 2.50, cached 1.25, output 10): 8 x 2.50 + 3 x 1.25 + 5 x 10 = 73.75.
GPT_4O_CALL = 0.00007375
# gpt-4o-mini (0.15, 0.075, 0.60): 8 x 0.15 + 3 x 0.075 + 5 x 0.60 = 4.425.
GPT_4O_MINI_CALL = 0.000004425
# text-embedding-3-small (0.02): the fake counts 4 tokens.
EMBEDDING_CALL = 0.00000008
REPLY = "Hello from the fake upstream"
# Seed 003's required fields (project_id null: a model of every project).
MODEL = {
    "model_name": "m", "description": "a model", "provider_info_id": "upstream", "project_id": None,
    "model_type": "completions", "owner_name": "us", "priority": 0,
}  # fmt: skip
CUSTOM_PRICES = "/projects/proj-a/custom_prices"


def _gateway(upstream_url: str, database_url: str, **overrides: Any) -> Gateway:
    return Gateway(make_settings(upstream_url, database=database_url, **overrides))


@pytest.fixture
async def gateway(upstream_url: str, database_url: str) -> AsyncIterator[Gateway]:
    gateway = _gateway(upstream_url, database_url)
    async with gateway.lifespan():
        yield gateway


def _client(gateway: Gateway, key: str = KEY_A, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url="http://gateway",
        headers={"authorization": f"Bearer {key}", **headers},
    )


def _chat(content: str, model: str = "upstream/gpt-4o", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def _stream_usage(text: str) -> dict[str, Any]:
    events = [orjson.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    usage: dict[str, Any] = events[-1]["usage"]
    return usage


async def test_a_whole_answer_tells_its_cost_in_a_header_and_in_its_usage(gateway: Gateway) -> None:
    async with _client(gateway) as client:
        response = await client.post("/v1/chat/completions", json=_chat("Hi"))
    assert response.status_code == 200
    assert response.json()["usage"]["cost"] == pytest.approx(GPT_4O_CALL)
    assert float(response.headers["x-cost-usd"]) == pytest.approx(GPT_4O_CALL)
    assert response.headers["x-cost-usd"] == "0.00007375"


async def test_a_stream_tells_its_cost_in_its_usage_chunk(gateway: Gateway) -> None:
    async with _client(gateway) as client:
        body = _chat("Hi", stream=True, stream_options={"include_usage": True})
        response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert _stream_usage(response.text)["cost"] == pytest.approx(GPT_4O_CALL)
    assert response.text.rstrip().endswith("data: [DONE]")


async def test_every_endpoint_matches_the_calls_made(gateway: Gateway) -> None:
    user_1 = {"id": "u-1", "name": "Ada", "tags": ["gold", "beta"]}
    user_2 = {"id": "u-2", "name": "Bob", "tags": ["gold"]}
    async with _client(gateway, **{"x-label": "support", "x-tags": "team=ml"}) as client:
        # Thread t-1: two turns, the second streamed; thread t-2: one call on another model.
        first = await client.post(
            "/v1/chat/completions",
            json={**_chat("What is 2+2?"), "extra": {"user": user_1}},
            headers={"x-thread-id": "t-1"},
        )
        history = [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": REPLY},
            {"role": "user", "content": "And 3+3?"},
        ]
        second = await client.post(
            "/v1/chat/completions",
            json={"model": "upstream/gpt-4o", "messages": history, "stream": True, "extra": {"user": user_1}},
            headers={"x-thread-id": "t-1"},
        )
        third = await client.post(
            "/v1/chat/completions",
            json={**_chat("Hello", "upstream/gpt-4o-mini"), "extra": {"user": user_2}},
            headers={"x-thread-id": "t-2", "x-label": "sales"},
        )
        failed = await client.post("/v1/chat/completions", json=_chat("Boom", "upstream/status-500"))
        embedded = await client.post(
            "/v1/embeddings", json={"model": "upstream/text-embedding-3-small", "input": "vector me"}
        )
    assert [r.status_code for r in (first, second, third, failed, embedded)] == [200, 200, 200, 500, 200]
    # The project next door makes a call in a thread of the same name: none of it may show up below.
    async with _client(gateway, KEY_B) as other:
        assert (
            await other.post("/v1/chat/completions", json=_chat("Elsewhere"), headers={"x-thread-id": "t-1"})
        ).is_success

    total_cost = 2 * GPT_4O_CALL + GPT_4O_MINI_CALL + EMBEDDING_CALL
    async with _client(gateway) as client:
        usage = (await client.post("/usage/total", json={"period": "last_day"})).json()
        assert usage["requests"] == 5 and usage["errors"] == 1
        assert usage["total_cost"] == pytest.approx(total_cost)
        assert usage["input_tokens"] == 3 * 11 + 4 and usage["output_tokens"] == 3 * 5
        assert usage["cached_tokens"] == 3 * 3
        assert usage["avg_ttft_ms"] is not None and usage["avg_ttft_ms"] > 0  # the streamed call

        by_model = (await client.post("/usage/models", json={"period": "last_day"})).json()["models"]
        assert {row["model"]: (row["requests"], row["total_cost"]) for row in by_model} == {
            "upstream/gpt-4o": (2, pytest.approx(2 * GPT_4O_CALL)),
            "upstream/gpt-4o-mini": (1, pytest.approx(GPT_4O_MINI_CALL)),
            "upstream/status-500": (1, 0.0),
            "upstream/text-embedding-3-small": (1, pytest.approx(EMBEDDING_CALL)),
        }

        summary = (await client.post("/analytics/summary", json={"period": "last_day", "groupBy": ["user"]})).json()
        assert summary["total_requests"] == 5 and summary["total_cost"] == pytest.approx(total_cost)
        per_user = {row["user"]: (row["requests"], row["total_cost"]) for row in summary["summary"]}
        assert per_user == {
            None: (2, pytest.approx(EMBEDDING_CALL)),
            "u-1": (2, pytest.approx(2 * GPT_4O_CALL)),
            "u-2": (1, pytest.approx(GPT_4O_MINI_CALL)),
        }
        labels = (await client.post("/analytics/summary", json={"period": "last_day", "groupBy": ["label"]})).json()
        assert {row["label"]: row["requests"] for row in labels["summary"]} == {"sales": 1, "support": 4}
        tags = (await client.post("/analytics/summary", json={"period": "last_day", "groupBy": ["tag"]})).json()
        assert {row["tag"]: row["requests"] for row in tags["summary"]} == {"team=ml": 5}
        providers = (
            await client.post("/analytics/summary", json={"period": "last_day", "groupBy": ["provider", "model"]})
        ).json()["summary"]
        assert {(row["provider"], row["model"]) for row in providers} == {
            ("upstream", "gpt-4o"), ("upstream", "gpt-4o-mini"), ("upstream", "status-500"),
            ("upstream", "text-embedding-3-small"),
        }  # fmt: skip

        series = (await client.post("/analytics", json={"period": "last_day", "min_unit": "day"})).json()
        assert series["min_unit"] == "day"
        # /analytics splits each bucket by group_by as /analytics/summary does (seed 000's AnalyticsRequest).
        split = (
            await client.post("/analytics", json={"period": "last_day", "min_unit": "day", "group_by": ["user"]})
        ).json()
        assert split["groupBy"] == ["user"]
        per_user_rows: dict[str | None, int] = {}
        for row in split["rows"]:
            per_user_rows[row["user"]] = per_user_rows.get(row["user"], 0) + row["requests"]
        assert per_user_rows == {None: 2, "u-1": 2, "u-2": 1}
        by_both = (
            await client.post("/analytics", json={"period": "last_day", "groupBy": ["provider", "model", "tag"]})
        ).json()["rows"]
        assert sorted((row["model"], row["tag"], row["requests"]) for row in by_both) == [
            ("gpt-4o", "team=ml", 2), ("gpt-4o-mini", "team=ml", 1), ("status-500", "team=ml", 1),
            ("text-embedding-3-small", "team=ml", 1),
        ]  # fmt: skip
        assert {row["provider"] for row in by_both} == {"upstream"}
        assert sum(row["cost"] for row in by_both) == pytest.approx(total_cost)
        assert sum(row["requests"] for row in series["rows"]) == 5
        assert sum(row["total_cost"] for row in series["rows"]) == pytest.approx(total_cost)

        threads = (await client.post("/threads", json={"limit": 10, "offset": 0})).json()
        assert threads["pagination"] == {"limit": 10, "offset": 0, "total": 2}
        listed = {t["id"]: t for t in threads["threads"]}
        assert listed["t-1"]["requests"] == 2 and listed["t-1"]["title"] == "What is 2+2?"
        assert listed["t-1"]["total_cost"] == pytest.approx(2 * GPT_4O_CALL)
        assert listed["t-2"]["message_count"] == 2

        cost = (await client.get("/threads/t-1/cost")).json()
        assert cost["thread_id"] == "t-1" and cost["requests"] == 2
        assert cost["total_cost"] == pytest.approx(2 * GPT_4O_CALL)
        assert (cost["input_tokens"], cost["output_tokens"]) == (22, 10)

        messages = (await client.get("/threads/t-1/messages")).json()
        assert [(m["role"], m["content"]) for m in messages["messages"]] == [
            ("user", "What is 2+2?"),
            ("assistant", REPLY),
            ("user", "And 3+3?"),
            ("assistant", REPLY + " "),  # the streamed answer, put together from its chunks
        ]
        assert messages["messages"][1]["cost"] == pytest.approx(GPT_4O_CALL)
        assert messages["pagination"]["total"] == 4
        page = (await client.get("/threads/t-1/messages?limit=1&offset=2")).json()
        assert [m["content"] for m in page["messages"]] == ["And 3+3?"]


async def test_no_key_reads_another_projects_figures(gateway: Gateway) -> None:
    async with _client(gateway) as client:
        assert (
            await client.post("/v1/chat/completions", json=_chat("Secret"), headers={"x-thread-id": "a-only"})
        ).is_success
    async with _client(gateway, KEY_B) as other:
        assert (await other.get("/threads/a-only/messages")).status_code == 404
        assert (await other.get("/threads/a-only/cost")).status_code == 404
        assert (await other.post("/threads", json={"limit": 5, "offset": 0})).json()["threads"] == []
        assert (await other.post("/usage/total", json={})).json()["requests"] == 0
        assert (await other.post("/usage/models", json={})).json()["models"] == []
        assert (await other.post("/analytics", json={})).json()["rows"] == []
        summary = (await other.post("/analytics/summary", json={"groupBy": ["model"]})).json()
        assert summary["total_requests"] == 0 and summary["summary"] == []
        # Naming project A with B's key is refused before any route runs.
        refused = await other.post("/usage/total", json={}, headers={"x-project-id": "proj-a"})
        assert refused.status_code == 403
    async with _client(gateway) as client:
        assert (await client.get("/threads/a-only/cost")).json()["requests"] == 1


async def test_a_custom_price_changes_the_cost_of_the_next_call(gateway: Gateway) -> None:
    admin = {"x-admin-key": ADMIN_KEY}
    async with _client(gateway) as client:
        before = (await client.post("/v1/chat/completions", json=_chat("Hi"))).json()["usage"]["cost"]
        prices = {"upstream/gpt-4o": {"per_input_token": 1.0, "per_output_token": 2.0}}
        answer = await client.post("/projects/proj-a/custom_prices", json=prices, headers=admin)
        assert answer.status_code == 200
        assert answer.json() == {
            "success": True, "message": "Custom prices updated successfully", "updated_models": ["upstream/gpt-4o"],
        }  # fmt: skip
        after = (await client.post("/v1/chat/completions", json=_chat("Hi"))).json()["usage"]["cost"]
        listed = {p["model"]: p for p in (await client.get("/pricing")).json()["data"]}
    assert before == pytest.approx(GPT_4O_CALL)
    # 11 input tokens at 1.0 (no cached price: cache reads bill as input) + 5 output at 2.0 per 1M.
    assert after == pytest.approx(21 / 1_000_000)
    assert listed["upstream/gpt-4o"]["source"] == "project" and listed["upstream/gpt-4o"]["input_price"] == 1.0
    assert listed["openai/gpt-4o"]["input_price"] == 2.5
    async with _client(gateway, KEY_B) as other:
        elsewhere = (await other.post("/v1/chat/completions", json=_chat("Hi"))).json()["usage"]["cost"]
        theirs = {p["model"] for p in (await other.get("/pricing")).json()["data"]}
    assert elsewhere == pytest.approx(GPT_4O_CALL), "a project's custom price is its own"
    assert "upstream/gpt-4o" not in theirs


async def test_a_registered_model_is_listed_with_its_price(gateway: Gateway) -> None:
    model = {
        "model_name": "house-model",
        "description": "A fine-tuned model",
        "provider_info_id": "upstream",
        "project_id": "proj-a",
        "model_type": "completions",
        "owner_name": "us",
        "priority": 0,
        "input_token_price": 0.00001,
        "output_token_price": 0.00003,
        "model_name_in_provider": "ft-house-1",
    }
    async with _client(gateway, **{"x-admin-key": ADMIN_KEY}) as client:
        created = await client.post("/admin/models", json=model)
        assert created.status_code == 200
        assert created.json()["input_token_price"] == "0.00001" and created.json()["model_name"] == "house-model"
        listed = {p["model"]: p for p in (await client.get("/pricing")).json()["data"]}
        registered = (await client.get("/admin/models")).json()["data"]
    assert listed["upstream/ft-house-1"]["input_price"] == 10.0  # USD per 1M tokens
    assert listed["upstream/ft-house-1"]["source"] == "registry"
    assert [m["model_name"] for m in registered] == ["house-model"]


async def test_a_registered_model_is_routed_priced_and_listed_for_its_project(
    gateway: Gateway, fake_upstream: FakeOpenAI
) -> None:
    model: dict[str, Any] = {**MODEL, "model_name": "house-model", "project_id": "proj-a"}
    model |= {"model_name_in_provider": "ft-house-1", "input_token_price": 0.00001, "output_token_price": 0.00003}
    async with _client(gateway, **{"x-admin-key": ADMIN_KEY}) as client:
        assert (await client.post("/admin/models", json=model)).status_code == 200
        answer = await client.post("/v1/chat/completions", json=_chat("Hi", "upstream/house-model"))
        listed = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
    assert answer.status_code == 200
    assert fake_upstream.last("/chat/completions").body["model"] == "ft-house-1"
    # 11 input tokens at 10 and 5 output tokens at 30 USD per 1M (the registered per-token prices).
    assert answer.json()["usage"]["cost"] == pytest.approx(260 / 1_000_000)
    assert listed["upstream/house-model"]["pricing"] == {"unit": "USD per 1M tokens", "input": 10.0, "output": 30.0}
    assert listed["upstream/gpt-4o"]["pricing"]["input"] == 2.5  # the catalogue's, beside the providers' models
    async with _client(gateway, KEY_B) as other:
        theirs = {m["id"] for m in (await other.get("/v1/models")).json()["data"]}
        await other.post("/v1/chat/completions", json=_chat("Hi", "upstream/house-model"))
    assert "upstream/house-model" not in theirs, "a project's registered model is its own"
    assert fake_upstream.last("/chat/completions").body["model"] == "house-model"


async def test_a_model_registered_for_one_project_prices_only_that_projects_calls(gateway: Gateway) -> None:
    # proj-a registers a house name for gpt-4o at its own (much higher) price.
    model: dict[str, Any] = {**MODEL, "model_name": "house", "project_id": "proj-a"}
    model |= {"model_name_in_provider": "gpt-4o", "input_token_price": 0.001, "output_token_price": 0.002}
    async with _client(gateway, **{"x-admin-key": ADMIN_KEY}) as admin:
        assert (await admin.post("/admin/models", json=model)).status_code == 200
        mine = await admin.post("/v1/chat/completions", json=_chat("Hi", "upstream/house"))
    async with _client(gateway, KEY_B) as other:
        theirs = await other.post("/v1/chat/completions", json=_chat("Hi"))
        listed = {e["model"]: e for e in (await other.get("/pricing")).json()["data"]}
        models = {m["id"]: m for m in (await other.get("/v1/models")).json()["data"]}
    assert mine.json()["usage"]["cost"] == pytest.approx(11 * 0.001 + 5 * 0.002)
    assert theirs.json()["usage"]["cost"] == pytest.approx(GPT_4O_CALL), "another project's registry price leaked"
    assert listed["openai/gpt-4o"]["source"] == "catalogue"
    assert all(entry["source"] != "registry" for entry in listed.values())
    assert models["upstream/gpt-4o"]["pricing"]["input"] == 2.5


async def test_a_custom_price_may_name_a_registered_model(gateway: Gateway) -> None:
    model: dict[str, Any] = {**MODEL, "model_name": "house", "project_id": "proj-a", "model_name_in_provider": "gpt-4o"}
    prices = {"upstream/house": {"per_input_token": 1000, "per_output_token": 2000}}
    async with _client(gateway, **{"x-admin-key": ADMIN_KEY}) as admin:
        assert (await admin.post("/admin/models", json=model)).status_code == 200
        assert (await admin.post(CUSTOM_PRICES, json=prices)).status_code == 200
        answer = await admin.post("/v1/chat/completions", json=_chat("Hi", "upstream/house"))
    # 11 input tokens at 1,000 and 5 output tokens at 2,000 USD per 1M.
    assert answer.json()["usage"]["cost"] == pytest.approx(0.021)


async def test_thread_ids_with_a_slash_or_a_percent_sign_can_be_read_back(gateway: Gateway) -> None:
    async with _client(gateway) as client:
        for thread in ("conv/42", "a%20b"):
            assert (
                await client.post("/v1/chat/completions", json=_chat("Hi"), headers={"x-thread-id": thread})
            ).is_success
        slash = await client.get("/threads/conv%2F42/cost")
        percent = await client.get("/threads/a%2520b/messages")
    assert slash.status_code == 200 and slash.json()["thread_id"] == "conv/42"
    assert percent.status_code == 200 and percent.json()["thread_id"] == "a%20b"
    assert [m["role"] for m in percent.json()["messages"]] == ["user", "assistant"]


async def test_analytics_rows_carry_the_seeds_cost_field(gateway: Gateway) -> None:
    async with _client(gateway) as client:
        assert (await client.post("/v1/chat/completions", json=_chat("Hi"))).is_success
        rows = (await client.post("/analytics", json={"period": "last_day"})).json()["rows"]
    assert sum(row["cost"] for row in rows) == pytest.approx(GPT_4O_CALL)
    assert all(row["cost"] == row["total_cost"] for row in rows)


async def test_admin_routes_refuse_a_missing_or_wrong_admin_key(gateway: Gateway) -> None:
    prices = {"upstream/gpt-4o": {"per_input_token": 1.0, "per_output_token": 2.0}}
    async with _client(gateway) as client:
        for headers, status in (({}, 401), ({"x-admin-key": "wrong"}, 401)):
            for method, path, body in (
                ("POST", "/admin/models", {"model_name": "m", "provider_info_id": "upstream"}),
                ("GET", "/admin/models", None),
                ("POST", "/projects/proj-a/custom_prices", prices),
            ):
                response = await client.request(method, path, json=body, headers=headers)
                assert response.status_code == status, (method, path, headers)
                assert response.json()["error"]["code"] == "invalid_api_key"
        unknown = await client.post("/projects/nope/custom_prices", json=prices, headers={"x-admin-key": ADMIN_KEY})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "project_not_found"


@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("POST", "/analytics/summary", {"groupBy": ["planet"]}, "groupBy[0]"),
        ("POST", "/analytics", {"period": "yesterday"}, "period"),
        ("POST", "/analytics", {"min_unit": "fortnight"}, "min_unit"),
        ("POST", "/usage/total", {"start_time_us": 2_000_000, "end_time_us": 1_000_000}, "start_time_us"),
        ("POST", "/usage/total", {"start_time_us": "soon"}, "start_time_us"),
        ("POST", "/threads", {"limit": 0, "offset": 0}, "limit"),
        ("POST", "/threads", {"limit": 10, "offset": -1}, "offset"),
        ("GET", "/threads/t/messages?limit=abc", None, "limit"),
        ("GET", "/threads/t/messages?offset=99999999999999999999", None, "offset"),
        ("GET", "/threads/t/messages?offset=%C2%B2", None, "offset"),
        ("POST", "/threads", {"limit": 10, "offset": 9223372036854775808}, "offset"),
        ("POST", "/analytics", {"end_time": "9999-12-31T23:59:59-05:00"}, "end_time"),
        ("POST", "/analytics", {"start_time": "0001-01-01T00:00:00+05:00"}, "start_time"),
        ("POST", "/usage/total", {"start_time": "1960-01-01T00:00:00Z"}, "start_time"),
        ("POST", "/admin/models", {**MODEL, "input_token_price": 1e308}, "input_token_price"),
        ("POST", CUSTOM_PRICES, {"m/x": {"per_input_token": 1e14, "per_output_token": 1}}, "m/x.per_input_token"),
        ("POST", "/admin/models", {"provider_info_id": "upstream"}, "model_name"),
        ("POST", "/admin/models", {**MODEL, "provider_info_id": "nowhere"}, "provider_info_id"),
        ("POST", "/admin/models", {**MODEL, "input_token_price": -1}, "input_token_price"),
        ("POST", "/projects/proj-a/custom_prices", {"gpt-4o": {"per_input_token": 1, "per_output_token": 1}}, "gpt-4o"),
        ("POST", CUSTOM_PRICES, {"upstream/gpt-4o": {"per_input_token": 1}}, "upstream/gpt-4o.per_output_token"),
    ],
)  # fmt: skip
async def test_bad_bodies_get_a_400_naming_the_field(
    gateway: Gateway, method: str, path: str, body: Any, param: str
) -> None:
    async with _client(gateway, **{"x-admin-key": ADMIN_KEY}) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_management_routes_answer_under_v1_and_a_project_prefix(gateway: Gateway) -> None:
    async with _client(gateway) as client:
        assert (await client.post("/v1/chat/completions", json=_chat("Hi"), headers={"x-thread-id": "p"})).is_success
        assert (await client.get("/v1/threads/p/cost")).json()["requests"] == 1
        assert (await client.get("/proj-a/v1/threads/p/cost")).json()["requests"] == 1
        assert (await client.get("/proj-b/v1/threads/p/cost")).status_code == 403
        wrong = await client.get("/threads/p/cost", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        method = await client.get("/usage/total")
        assert method.status_code == 405 and method.headers["allow"] == "POST"


async def test_a_restart_keeps_everything(upstream_url: str, database_url: str) -> None:
    first = _gateway(upstream_url, database_url)
    async with first.lifespan():
        async with _client(first) as client:
            for _ in range(3):
                response = await client.post("/v1/chat/completions", json=_chat("Hi"), headers={"x-thread-id": "kept"})
                assert response.is_success
            prices = {"upstream/gpt-4o-mini": {"per_input_token": 5, "per_output_token": 5}}
            assert (
                await client.post("/projects/proj-a/custom_prices", json=prices, headers={"x-admin-key": ADMIN_KEY})
            ).is_success
        # No flush here: a clean stop must write what was accepted.
    second = _gateway(upstream_url, database_url)
    async with second.lifespan():
        async with _client(second) as client:
            cost = (await client.get("/threads/kept/cost")).json()
            messages = (await client.get("/threads/kept/messages")).json()["messages"]
            mini = (await client.post("/v1/chat/completions", json=_chat("Hi", "upstream/gpt-4o-mini"))).json()
    assert cost["requests"] == 3 and cost["total_cost"] == pytest.approx(3 * GPT_4O_CALL)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert mini["usage"]["cost"] == pytest.approx(16 * 5 / 1_000_000), "custom prices survive the restart"


async def test_a_project_can_keep_its_messages_out_of_the_ledger(upstream_url: str, database_url: str) -> None:
    settings = make_settings(upstream_url, database=database_url)
    private = settings.model_copy(
        update={"projects": [ProjectSettings(id="proj-a", keys=[KEY_A], store_messages=False), *settings.projects[1:]]}
    )
    gateway = Gateway(private)
    async with gateway.lifespan():
        async with _client(gateway) as client:
            response = await client.post("/v1/chat/completions", json=_chat("Private"), headers={"x-thread-id": "q"})
            assert response.is_success
            assert (await client.get("/threads/q/cost")).json()["requests"] == 1
            assert (await client.get("/threads/q/messages")).json()["messages"] == []


async def test_without_a_database_the_ledger_is_off(upstream_url: str) -> None:
    gateway = Gateway(make_settings(upstream_url, database=None))
    async with gateway.lifespan():
        async with _client(gateway) as client:
            response = await client.post("/v1/chat/completions", json=_chat("Hi"))
            assert response.is_success and "cost" not in response.json()["usage"]
            assert "x-cost-usd" not in response.headers
            assert (await client.post("/usage/total", json={})).status_code == 404


async def test_a_stream_the_client_left_is_recorded_as_cut_short(gateway: Gateway) -> None:
    scope = http_scope("/v1/chat/completions", headers={"authorization": f"Bearer {KEY_A}"})
    body = orjson.dumps(_chat("Tick", "upstream/endless", stream=True))
    with anyio.fail_after(5):
        await run(gateway.app, scope, Exchange(body, disconnect_after_chunks=3))
    async with _client(gateway) as client:
        models = (await client.post("/usage/models", json={"period": "last_hour"})).json()["models"]
    assert [(m["model"], m["requests"], m["errors"]) for m in models] == [("upstream/endless", 1, 1)]


async def test_a_guards_model_calls_add_to_the_cost_and_its_results_are_recorded(
    upstream_url: str, database_url: str
) -> None:
    judge = GuardSettings(
        type="llm_judge", stage="input", action="block", parameters={"template": "toxicity", "model": "upstream/judge"}
    )
    # The fake judge answers with the usual usage: 16 tokens at 1 USD per 1M.
    judge_price = ModelPrice(input=Decimal(1), output=Decimal(1))
    gateway = _gateway(upstream_url, database_url, guards={"toxic": judge}, prices={"upstream/judge": judge_price})
    async with gateway.lifespan():
        async with _client(gateway) as client:
            response = await client.post(
                "/v1/chat/completions", json={**_chat("Be kind"), "extra": {"guards": ["toxic"]}}
            )
            assert response.status_code == 200
            assert gateway.ledger is not None
            await gateway.ledger.writer.flush()
            (call,) = await gateway.ledger.store.calls_of_trace("proj-a", response.headers["x-trace-id"])
    total = GPT_4O_CALL + 16 / 1_000_000
    assert float(response.headers["x-cost-usd"]) == pytest.approx(total)
    assert call.cost_usd == pytest.approx(total)
    (guard,) = call.guards
    assert guard["id"] == "toxic" and guard["passed"] is True and guard["model"] == "upstream/judge"
    assert guard["cost_usd"] == pytest.approx(16 / 1_000_000)


async def test_a_call_that_fell_back_records_its_routed_target_and_its_attempts(
    upstream_url: str, database_url: str, fake_upstream: FakeOpenAI
) -> None:
    smart = VirtualModelSettings(strategy="fallback", targets=["upstream/gpt-4o", "upstream/gpt-4o-mini"])
    gateway = _gateway(upstream_url, database_url, models={"smart": smart}, retry=RetrySettings(backoff=0.01))
    fake_upstream.script("gpt-4o", "500")
    async with gateway.lifespan():
        async with _client(gateway) as client:
            response = await client.post("/v1/chat/completions", json=_chat("Hi", "smart"))
            assert response.status_code == 200 and response.headers["x-model-name"] == "gpt-4o-mini"
            assert gateway.ledger is not None
            await gateway.ledger.writer.flush()
            (call,) = await gateway.ledger.store.calls_of_trace("proj-a", response.headers["x-trace-id"])
    assert (call.requested_model, call.provider, call.model) == ("smart", "upstream", "gpt-4o-mini")
    assert call.cost_usd == pytest.approx(GPT_4O_MINI_CALL), "priced as the model that answered"
    assert [(a["model"], a["status"]) for a in call.attempts] == [("gpt-4o", 500), ("gpt-4o-mini", 200)]


async def test_a_database_that_fails_a_read_gets_an_openai_shaped_503(upstream_url: str, database_url: str) -> None:
    gateway = _gateway(upstream_url, database_url)
    assert gateway.ledger is not None
    async with gateway.lifespan():
        async with _client(gateway) as client:
            assert (await client.post("/threads", json={})).status_code == 200
            await gateway.ledger.store.close()  # the database goes away under a running gateway
            response = await client.post("/threads", json={})
            usage = await client.post("/usage/total", json={"period": "last_day"})
        await gateway.ledger.store.start()  # back, so that the shutdown's flush has somewhere to write
    for failed in (response, usage):
        assert failed.status_code == 503
        assert failed.json()["error"]["type"] == "server_error"
        assert "database" in failed.json()["error"]["message"]


async def test_a_named_request_router_is_recorded_by_its_name(gateway: Gateway, fake_upstream: FakeOpenAI) -> None:
    named = {"name": "cheap-first", "type": "fallback", "targets": ["upstream/gpt-4o-mini"]}
    unnamed = {"type": "fallback", "targets": ["upstream/gpt-4o-mini"]}
    async with _client(gateway) as client:
        responses = [
            await client.post("/v1/chat/completions", json=_chat("Hi", "router/dynamic", router=router))
            for router in (named, unnamed)
        ]
        assert gateway.ledger is not None
        await gateway.ledger.writer.flush()
        calls = [
            (await gateway.ledger.store.calls_of_trace("proj-a", response.headers["x-trace-id"]))[0]
            for response in responses
        ]
    assert [call.requested_model for call in calls] == ["router/cheap-first", "router/dynamic"]
    assert all(call.model == "gpt-4o-mini" for call in calls)
