"""``GET /models`` and ``GET /pricing`` at the root and under ``/v1``: with a key as always, and without one
where ``public_catalogue: true`` allows it (seed 002 shows both at the root base URL, unauthenticated)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from tests.conftest import ADMIN_KEY, KEY_A, make_settings
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

PATHS = ("/models", "/v1/models", "/pricing", "/v1/pricing")


async def serving(upstream_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(make_settings(upstream_url, provider={"models": ["gpt-4o"]}, **overrides))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def test_the_catalogue_answers_at_the_root_and_under_v1_with_a_key(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async for client in serving(upstream_url):
        for path in PATHS:
            response = await client.get(path, headers={"authorization": f"Bearer {KEY_A}"})
            assert response.status_code == 200, (path, response.text)
            assert response.json()["object"] == "list"
        root = await client.get("/models", headers={"authorization": f"Bearer {KEY_A}"})
        v1 = await client.get("/v1/models", headers={"authorization": f"Bearer {KEY_A}"})
        assert root.json() == v1.json()
        assert "upstream/gpt-4o" in {entry["id"] for entry in root.json()["data"]}
        # Off by default: a key is needed.
        for path in PATHS:
            response = await client.get(path)
            assert response.status_code == 401, path


async def test_public_catalogue_needs_no_key_and_shows_no_projects_models(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async for client in serving(upstream_url, public_catalogue=True):
        admin = {"x-admin-key": ADMIN_KEY}
        for name, public, project in (("team-model", False, "proj-a"), ("shared-model", True, None)):
            registration = {
                "model_name": name, "description": "d", "provider_info_id": "upstream", "project_id": project,
                "model_type": "completions", "owner_name": "me", "priority": 1, "public": public,
                "input_token_price": 0.000001, "output_token_price": 0.000002,
            }  # fmt: skip
            assert (await client.post("/admin/models", json=registration, headers=admin)).status_code == 200
        prices = {"upstream/gpt-4o": {"per_input_token": 9.0, "per_output_token": 9.0}}
        assert (await client.post("/projects/proj-a/custom_prices", json=prices, headers=admin)).is_success
        for path in PATHS:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
        anonymous = {entry["id"] for entry in (await client.get("/models")).json()["data"]}
        assert {"upstream/gpt-4o", "upstream/shared-model"} <= anonymous and "upstream/team-model" not in anonymous
        keyed = await client.get("/v1/models", headers={"authorization": f"Bearer {KEY_A}"})
        assert "upstream/team-model" in {entry["id"] for entry in keyed.json()["data"]}
        # Without a key, no project's custom prices either, even when the path names the project.
        anonymous_prices = (await client.get("/proj-a/v1/pricing")).json()["data"]
        keyed_prices = (await client.get("/pricing", headers={"authorization": f"Bearer {KEY_A}"})).json()["data"]
        assert anonymous_prices != keyed_prices
        # A wrong key is still refused, and the rest of the API still needs one.
        assert (await client.get("/models", headers={"authorization": "Bearer nope"})).status_code == 401
        assert (await client.post("/threads", json={})).status_code == 401
        chat = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
        assert (await client.post("/v1/chat/completions", json=chat)).status_code == 401
