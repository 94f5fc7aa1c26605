from __future__ import annotations

import httpx
import pytest

from relaygate.keys import KeyRing, hash_key, key_digest
from relaygate.middleware import AuthMiddleware, ProjectScopeMiddleware
from tests.middleware.apps import context_echo

pytestmark = pytest.mark.anyio

KEY_A = "key-of-project-a"
KEY_B = "key-of-project-b"
KEY_BOTH = "key-of-both"
ADMIN = "the-admin-key"
KEYS = KeyRing.from_projects({"proj-a": [KEY_A, hash_key(KEY_BOTH)], "proj-b": [hash_key(KEY_B), KEY_BOTH]})


def client(keys: KeyRing = KEYS, admin: str | None = ADMIN, *, with_scope: bool = True) -> httpx.AsyncClient:
    app = AuthMiddleware(context_echo, keys=keys, admin_key_digest=key_digest(admin) if admin else None)
    if with_scope:
        app = ProjectScopeMiddleware(app)  # type: ignore[assignment]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_of_one_project_needs_no_project_named() -> None:
    async with client(with_scope=False) as c:
        response = await c.get("/v1/models", headers=bearer(KEY_A))
    assert response.status_code == 200
    assert response.json()["project_id"] == "proj-a"
    assert response.json()["key_id"].startswith("key_")
    assert KEY_A not in response.text


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "invalid_api_key"),
        ({"Authorization": "Basic abc"}, 401, "invalid_api_key"),
        ({"Authorization": "Bearer "}, 401, "invalid_api_key"),
        (bearer("not-a-key"), 401, "invalid_api_key"),
        ({**bearer(KEY_B), "X-Project-Id": "proj-a"}, 403, "permission_denied"),
        ({**bearer(KEY_A), "X-Project-Id": "proj-unknown"}, 403, "permission_denied"),
        (bearer(KEY_BOTH), 400, "project_required"),
    ],
)
async def test_refusals(headers: dict[str, str], status: int, code: str) -> None:
    async with client() as c:
        response = await c.post("/v1/chat/completions", headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code


async def test_a_key_stored_as_its_digest_works_and_a_shared_key_picks_the_named_project() -> None:
    async with client() as c:
        b = await c.get("/v1/models", headers=bearer(KEY_B))
        both = await c.get("/proj-b/v1/models", headers=bearer(KEY_BOTH))
    assert b.json()["project_id"] == "proj-b"
    assert both.status_code == 200 and both.json()["project_id"] == "proj-b"


async def test_admin_routes_need_the_admin_key_not_a_project_key() -> None:
    async with client() as c:
        missing = await c.get("/admin/models", headers=bearer(KEY_A))
        wrong = await c.get("/admin/models", headers={"X-Admin-Key": "nope"})
        right = await c.get("/admin/models", headers={"X-Admin-Key": ADMIN})
    assert missing.status_code == 401 and wrong.status_code == 401
    assert right.status_code == 200 and right.json()["is_admin"] is True


async def test_only_the_admin_prefix_itself_is_admin() -> None:
    async with client() as c:
        response = await c.get("/administrator", headers=bearer(KEY_A))
    assert response.status_code == 200 and response.json()["is_admin"] is False


async def test_admin_routes_are_closed_without_an_admin_key() -> None:
    async with client(admin=None) as c:
        response = await c.get("/admin/models", headers={"X-Admin-Key": ADMIN})
    assert response.status_code == 403


async def test_health_is_public() -> None:
    async with client() as c:
        response = await c.get("/health")
    assert response.status_code == 200


async def test_no_keys_configured_lets_requests_in_to_the_default_project() -> None:
    async with client(KeyRing()) as c:
        plain = await c.get("/v1/models")
        named = await c.get("/proj-x/v1/models")
    assert plain.json()["project_id"] == "default"
    assert named.json()["project_id"] == "proj-x"
