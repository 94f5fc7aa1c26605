from __future__ import annotations

import re

import httpx
import pytest

from relaygate.keys import KeyRing
from relaygate.middleware import AuthMiddleware, TracingMiddleware
from tests.asgi import Exchange, http_scope, run
from tests.middleware.apps import context_echo

pytestmark = pytest.mark.anyio


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=TracingMiddleware(context_echo)), base_url="http://t")


async def test_ids_from_headers_reach_the_context_and_come_back() -> None:
    headers = {"X-Thread-Id": "thread-1", "X-Run-Id": "run-1", "X-Label": "checkout", "X-Tags": "team=ml&tier= gold"}
    async with client() as c:
        response = await c.get("/v1/models", headers=headers)
    seen = response.json()
    assert (seen["thread_id"], seen["run_id"], seen["label"]) == ("thread-1", "run-1", "checkout")
    assert seen["tags"] == {"team": "ml", "tier": "gold"}
    assert response.headers["x-thread-id"] == "thread-1"
    assert response.headers["x-run-id"] == "run-1"
    assert response.headers["x-trace-id"] == seen["trace_id"]


async def test_a_run_id_is_generated_and_no_thread_id_is_invented() -> None:
    async with client() as c:
        first = await c.get("/")
        second = await c.get("/")
    assert re.fullmatch(r"[0-9a-f-]{36}", first.headers["x-run-id"])
    assert first.headers["x-run-id"] == first.json()["run_id"]
    assert first.headers["x-run-id"] != second.headers["x-run-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-trace-id"])
    assert first.headers["x-trace-id"] != second.headers["x-trace-id"]
    assert "x-thread-id" not in first.headers


async def test_an_overlong_id_is_a_400_in_the_openai_shape_once_the_caller_is_authenticated() -> None:
    # The refusal is noted on the context and sent by AuthMiddleware once the key is checked (here: no keys).
    app = TracingMiddleware(AuthMiddleware(context_echo, keys=KeyRing()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/", headers={"X-Thread-Id": "t" * 257})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "Header x-thread-id must be 1 to 256 characters long.",
        "type": "invalid_request_error",
        "param": "x-thread-id",
        "code": "invalid_header",
    }
    assert "x-trace-id" in response.headers


async def test_ids_are_added_once_to_the_start_message_and_bodies_pass_untouched() -> None:
    exchange = await run(TracingMiddleware(context_echo), http_scope("/", headers={"x-run-id": "r"}), Exchange())
    names = [name for name, _ in exchange.messages[0]["headers"]]
    assert names.count(b"x-run-id") == 1 and names.count(b"x-trace-id") == 1
    assert [m["type"] for m in exchange.messages] == ["http.response.start", "http.response.body"]


async def test_non_http_scopes_pass_through() -> None:
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await TracingMiddleware(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
