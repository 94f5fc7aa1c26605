"""``POST /admin/models`` as seed 003 specifies it: its required fields (a 400 naming each one missing),
``request_response_mapping`` kept and returned, and errors a seed-003 client reads (``{code, message}``)
beside OpenAI's ``error``, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from tests.conftest import ADMIN_KEY, make_settings

pytestmark = pytest.mark.anyio

ADMIN = {"x-admin-key": ADMIN_KEY}
# Seed 003's example ModelCreateRequest, with a provider and a project of this gateway.
SEED_MODEL: dict[str, Any] = {
    "model_name": "my-model",
    "description": "A custom completions model for text and image inputs",
    "provider_info_id": "upstream",
    "project_id": "proj-a",
    "public": False,
    "request_response_mapping": "openai-compatible",
    "model_type": "completions",
    "input_token_price": 0.00001,
    "output_token_price": 0.00003,
    "context_size": 128000,
    "capabilities": ["tools"],
    "input_types": ["text", "image"],
    "output_types": ["text", "image"],
    "tags": [],
    "owner_name": "openai",
    "priority": 0,
    "model_name_in_provider": "my-model-v1.2",
}
REQUIRED = ["model_name", "description", "provider_info_id", "project_id", "model_type", "owner_name", "priority"]


@pytest.fixture
async def client(upstream_url: str, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(make_settings(upstream_url, database=database_url))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=ADMIN) as client:
            yield client


def seed_003_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The body, checked to be both seed 003's Error ({code, message}) and OpenAI's ({error: {...}})."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == status and isinstance(body["message"], str) and body["message"]
    assert body["error"]["message"] == body["message"]
    return body


async def test_request_response_mapping_is_stored_and_returned(client: httpx.AsyncClient) -> None:
    created = await client.post("/admin/models", json=SEED_MODEL)
    assert created.status_code == 200, created.text
    assert created.json()["request_response_mapping"] == "openai-compatible"
    listed = (await client.get("/admin/models")).json()["data"]
    assert [(m["model_name"], m["request_response_mapping"]) for m in listed] == [("my-model", "openai-compatible")]
    # Registered again without it: the registry says what it was told last.
    again = await client.post(
        "/admin/models", json={k: v for k, v in SEED_MODEL.items() if k != "request_response_mapping"}
    )
    assert again.json()["request_response_mapping"] is None


@pytest.mark.parametrize("left_out", [[name] for name in REQUIRED] + [REQUIRED[1:], ["owner_name", "priority"]])
async def test_each_missing_required_field_is_named(client: httpx.AsyncClient, left_out: list[str]) -> None:
    body = {key: value for key, value in SEED_MODEL.items() if key not in left_out}
    error = seed_003_error(await client.post("/admin/models", json=body), 400)
    assert error["error"]["code"] == "missing_required_parameter"
    assert error["error"]["param"] == left_out[0]
    for name in left_out:
        assert f"'{name}'" in error["message"]
    for name in set(REQUIRED) - set(left_out):
        assert f"'{name}'" not in error["message"]
    assert (await client.get("/admin/models")).json()["data"] == []


async def test_every_admin_error_is_in_seed_003s_shape(client: httpx.AsyncClient) -> None:
    seed_003_error(await client.post("/admin/models", json={**SEED_MODEL, "priority": "high"}), 400)
    seed_003_error(await client.post("/admin/models", json=SEED_MODEL, headers={"x-admin-key": "wrong"}), 401)
    seed_003_error(await client.post("/projects/nope/custom_prices", json={"a/b": {"per_input_token": 1}}), 404)
    seed_003_error(await client.delete("/admin/models"), 405)
    # The rest of the API keeps OpenAI's shape alone.
    outside = await client.post("/threads", json={})
    assert outside.status_code == 401 and set(outside.json()) == {"error"}
