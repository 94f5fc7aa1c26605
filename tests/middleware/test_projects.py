from __future__ import annotations

import httpx
import pytest

from relaygate.keys import KeyRing
from relaygate.middleware import AuthMiddleware, ProjectScopeMiddleware
from tests.asgi import Exchange, http_scope, run
from tests.middleware.apps import context_echo

pytestmark = pytest.mark.anyio


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ProjectScopeMiddleware(context_echo)), base_url="http://t"
    )


@pytest.mark.parametrize(
    ("path", "header", "project", "rewritten"),
    [
        ("/proj-a/v1/chat/completions", None, "proj-a", "/v1/chat/completions"),
        ("/v1/chat/completions", "proj-b", "proj-b", "/v1/chat/completions"),
        ("/proj-a/v1/models", "proj-a", "proj-a", "/v1/models"),
        ("/v1/models", None, None, "/v1/models"),
        ("/health", None, None, "/health"),
        ("/proj.x_1/v1", None, "proj.x_1", "/v1"),
    ],
)
async def test_project_from_path_or_header(path: str, header: str | None, project: str | None, rewritten: str) -> None:
    async with client() as c:
        response = await c.get(path, headers={"X-Project-Id": header} if header else {})
    assert response.status_code == 200
    assert response.json()["project_id"] == project
    assert response.json()["path"] == rewritten
    assert response.json()["raw_path"] == rewritten


@pytest.mark.parametrize("path", ["/v1/v1/models", "/%C3%86/v1/models", "/-x/v1/chat/completions"])
async def test_a_prefix_that_is_no_project_is_a_404(path: str) -> None:
    # "v1" is never a project, nor is what no project id could be: no route is there (the proxy would say the
    # same; refused here, a dialect's route answers it in its own shape).
    async with client() as c:
        response = await c.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_url"


async def test_path_and_header_that_differ_are_a_400_once_the_caller_is_authenticated() -> None:
    app = ProjectScopeMiddleware(AuthMiddleware(context_echo, keys=KeyRing()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/proj-a/v1/models", headers={"X-Project-Id": "proj-b"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "project_mismatch" and error["param"] == "X-Project-Id"
    assert "proj-a" in error["message"] and "proj-b" in error["message"]


async def test_rewrite_keeps_the_mount_prefix() -> None:
    scope = http_scope("/proj-a/v1/models", method="GET", root_path="/llm")
    exchange = await run(ProjectScopeMiddleware(context_echo), scope, Exchange())
    assert '"path":"/llm/v1/models"' in exchange.text
    assert '"project_id":"proj-a"' in exchange.text
    assert scope["path"] == "/llm/proj-a/v1/models", "the caller's scope is not modified"
