"""Bad input and failing upstreams: always the OpenAI error shape with the right status, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from relaygate import Gateway
from tests.conftest import KEY_A, make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import free_port

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "Hi"}]


def assert_error(
    response: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"messages": MESSAGES}, "model"),
        ("/v1/chat/completions", {"model": "upstream/gpt-4o"}, "messages"),
        ("/v1/chat/completions", {"model": "upstream/gpt-4o", "messages": [{"content": "x"}]}, "messages[0].role"),
        ("/v1/embeddings", {"model": "upstream/e"}, "input"),
        ("/v1/embeddings", {"input": "x"}, "model"),
        ("/v1/images/generations", {"model": "upstream/i"}, "prompt"),
    ],
)
async def test_a_missing_field_is_a_400_naming_it(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], param: str
) -> None:
    error = assert_error(await client.post(path, json=body), 400, "missing_required_parameter", param)
    assert param in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "upstream/gpt-4o", "messages": "Hi"}, "messages"),
        ({"model": "upstream/gpt-4o", "messages": []}, "messages"),
        ({"model": 4, "messages": MESSAGES}, "model"),
        ({"model": "upstream/gpt-4o", "messages": MESSAGES, "stream": "yes"}, "stream"),
        ({"model": "upstream/gpt-4o", "messages": MESSAGES, "extra": {"user": {"id": 7}}}, "extra.user.id"),
    ],
)
async def test_a_wrong_value_is_a_400_naming_it(client: httpx.AsyncClient, body: dict[str, Any], param: str) -> None:
    assert_error(await client.post("/v1/chat/completions", json=body), 400, "invalid_value", param)


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe"])
async def test_a_body_that_is_not_a_json_object_is_a_400(client: httpx.AsyncClient, content: bytes) -> None:
    assert_error(await client.post("/v1/chat/completions", content=content), 400, "invalid_json")


@pytest.mark.parametrize("model", ["nope/gpt-4o", "gpt-4o", "upstream/", "mock", "bad\nname"])
async def test_an_unknown_provider_or_model_is_a_404(client: httpx.AsyncClient, model: str) -> None:
    response = await client.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES})
    assert_error(response, 404, "model_not_found", "model")


async def test_a_model_outside_a_configured_list_is_a_404(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    gateway = Gateway(make_settings(upstream_url, provider={"models": ["gpt-4o"]}))
    async with gateway.lifespan(), _client(gateway) as client:
        ok = await client.post("/v1/chat/completions", json={"model": "upstream/gpt-4o", "messages": MESSAGES})
        missing = await client.post("/v1/chat/completions", json={"model": "upstream/gpt-5", "messages": MESSAGES})
        listed = await client.get("/v1/models")
    assert ok.status_code == 200
    assert_error(missing, 404, "model_not_found")
    assert [m["id"] for m in listed.json()["data"] if m["provider"] == "upstream"] == ["upstream/gpt-4o"]
    assert not [r for r in fake_upstream.requests if r.path == "/v1/models"], "a configured list needs no upstream call"


async def test_a_default_provider_takes_bare_model_names(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    gateway = Gateway(make_settings(upstream_url, default_provider="upstream"))
    async with gateway.lifespan(), _client(gateway) as client:
        response = await client.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MESSAGES})
    assert response.status_code == 200
    assert fake_upstream.last().body["model"] == "gpt-4o-mini"


async def test_a_body_over_the_limit_is_a_413_whether_announced_or_not(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    gateway = Gateway(make_settings(upstream_url, max_body_bytes=2048))
    big = {"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "x" * 4096}]}

    async def chunked() -> Any:
        yield b'{"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}]}'

    async with gateway.lifespan(), _client(gateway) as client:
        announced = await client.post("/v1/chat/completions", json=big)
        streamed = await client.post("/v1/chat/completions", content=chunked())
    assert_error(announced, 413, "request_too_large")
    assert_error(streamed, 413, "request_too_large")
    assert not fake_upstream.requests


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
        ("PUT", "/v1/embeddings", 405, "method_not_allowed"),
        ("POST", "/v1/models", 405, "method_not_allowed"),
        ("POST", "/v1/completions", 404, "unknown_url"),
        ("GET", "/", 404, "unknown_url"),
    ],
)
async def test_wrong_method_and_unknown_url(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await client.request(method, path)
    assert_error(response, status, code)
    if status == 405:
        assert response.headers["allow"] in {"GET", "POST"}


async def test_a_trailing_slash_is_forgiven(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions/", json={"model": "mock/echo", "messages": MESSAGES})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("model", "status", "expected_code"),
    [
        ("upstream/status-400", 400, "fake_400"),
        ("upstream/status-404", 404, "fake_404"),
        ("upstream/status-422", 422, "fake_422"),
        ("upstream/status-500", 500, "fake_500"),
        ("upstream/status-503", 503, "fake_503"),
        ("upstream/text-status-503", 503, None),
        ("upstream/text-status-404", 404, "model_not_found"),
    ],
)
async def test_upstream_errors_keep_their_status_in_the_openai_shape(
    client: httpx.AsyncClient, model: str, status: int, expected_code: str | None
) -> None:
    response = await client.post("/v1/chat/completions", json={"model": model, "messages": MESSAGES})
    error = assert_error(response, status, expected_code)
    if model.startswith("upstream/text-status"):
        assert error["message"] == "upstream exploded"


async def test_upstream_429_keeps_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"model": "upstream/status-429", "input": "x"})
    assert_error(response, 429, "fake_429")
    assert response.headers["retry-after"] == "7"


async def test_upstream_rejecting_the_gateway_credentials_says_so(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={"model": "upstream/status-401", "messages": MESSAGES})
    error = assert_error(response, 401, "provider_auth_error")
    assert "refused the gateway's credentials" in error["message"]


async def test_an_upstream_that_cannot_be_reached_is_a_502(upstream_url: str) -> None:
    gateway = Gateway(make_settings(f"http://127.0.0.1:{free_port()}/v1"))
    async with gateway.lifespan(), _client(gateway) as client:
        response = await client.post("/v1/chat/completions", json={"model": "upstream/gpt-4o", "messages": MESSAGES})
    assert_error(response, 502, "upstream_connection_error")


async def test_an_upstream_that_is_too_slow_is_a_504(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    gateway = Gateway(make_settings(upstream_url, provider={"timeouts": {"read": 0.3}}))
    async with gateway.lifespan(), _client(gateway) as client:
        response = await client.post("/v1/chat/completions", json={"model": "upstream/sleep-1", "messages": MESSAGES})
    assert_error(response, 504, "upstream_timeout")


async def test_an_upstream_answering_200_with_no_json_is_a_502(
    client: httpx.AsyncClient, fake_upstream: FakeOpenAI
) -> None:
    # text-status-200 answers 200 with a plain-text body, as a misconfigured base_url would.
    gateway_response = await client.post(
        "/v1/chat/completions", json={"model": "upstream/text-status-200", "messages": MESSAGES}
    )
    assert_error(gateway_response, 502)


def _client(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gateway.app),
        base_url="http://gateway",
        headers={"authorization": f"Bearer {KEY_A}"},
    )
