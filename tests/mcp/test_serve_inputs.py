"""The gateway's MCP endpoint in process (the ``mcp`` SDK's client over ``httpx.ASGITransport``, a real FastMCP
server on 127.0.0.1 behind it): what is not MCP, a gateway that has not started, keys' own tool limits, and the
settings of ``tool_calls_per_minute``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from pydantic import ValidationError

from relaygate import Gateway
from relaygate.limits.config import ProjectLimits
from relaygate.limits.usage import limit_usage
from relaygate.settings import McpServerSettings, ProjectSettings, Settings
from tests.fakes.mcp_servers import FakeMcp, serve_mcp

pytestmark = pytest.mark.anyio

KEY = "rg-test-key-mcp-inputs"
JSON = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture(scope="module")
def calc() -> Iterator[tuple[str, FakeMcp]]:
    with serve_mcp("http") as served:
        yield served


def settings(url: str, **project: Any) -> Settings:
    return Settings(
        mcp_servers={"calc": McpServerSettings(url=url)},
        projects=[ProjectSettings(id="proj", keys=[KEY], **project)],
        database=None,
        max_body_bytes=4096,
    )


@asynccontextmanager
async def session_of(gateway: Gateway, path: str, key: str | None = KEY) -> AsyncIterator[ClientSession]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as http:
        async with streamable_http_client("http://gateway" + path, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def post(gateway: Gateway, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.post(path, content=body, headers={"authorization": f"Bearer {KEY}", **headers})


def message(method: str | None, **fields: Any) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, **({"method": method} if method else {}), **fields})


NOT_MCP = [
    (b"not json", JSON, 400),
    (b"[]", JSON, 400),
    (message(None), JSON, 400),
    (message("tools/list"), {"content-type": "application/json"}, 406),  # Accept: */* is not enough for MCP
    (message("tools/list"), {**JSON, "content-type": "text/plain"}, 415),
    (message("foo/bar"), JSON, 200),  # a JSON-RPC error, in a 200
    (message("tools/call"), JSON, 200),
    (message("tools/call", params={"name": "add", "arguments": "x"}), JSON, 200),
    (message("tools/call", params={"name": "nowhere__add", "arguments": {}}), JSON, 200),
]


@pytest.mark.parametrize(("body", "headers", "status"), NOT_MCP)
async def test_what_is_not_mcp_gets_a_json_rpc_error_never_a_5xx(
    calc: tuple[str, FakeMcp], body: bytes, headers: dict[str, str], status: int
) -> None:
    gateway = Gateway(settings(calc[0]))
    async with gateway.lifespan():
        response = await post(gateway, "/mcp", body, headers)
    assert response.status_code == status, response.text
    answer = response.json()  # a JSON-RPC error, a result marked as one, or the gateway's own refusal
    assert "error" in answer or answer["result"]["isError"] is True


async def test_a_body_over_max_body_bytes_is_a_413_in_the_gateways_shape(calc: tuple[str, FakeMcp]) -> None:
    gateway = Gateway(settings(calc[0]))
    async with gateway.lifespan():
        response = await post(gateway, "/mcp/calc", message("tools/list", params={"x": "a" * 5000}), JSON)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_get_and_delete_are_405_as_no_sessions_are_kept(calc: tuple[str, FakeMcp]) -> None:
    gateway = Gateway(settings(calc[0]))
    transport = httpx.ASGITransport(app=gateway.app)
    async with gateway.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        for method in ("GET", "DELETE"):
            response = await client.request(method, "/mcp/calc", headers={"authorization": f"Bearer {KEY}"})
            assert response.status_code == 405 and response.headers["allow"] == "POST"


async def test_before_the_gateway_started_the_endpoint_says_so(calc: tuple[str, FakeMcp]) -> None:
    gateway = Gateway(settings(calc[0]))  # a mounted gateway whose host never ran its lifespan
    response = await post(gateway, "/mcp/calc", message("tools/list"), JSON)
    assert response.status_code == 503
    assert "lifespan" in response.json()["error"]["message"]


async def test_a_gateway_without_keys_serves_every_server_to_project_default(calc: tuple[str, FakeMcp]) -> None:
    gateway = Gateway(Settings(mcp_servers={"calc": McpServerSettings(url=calc[0], tools=["add"])}, database=None))
    async with gateway.lifespan(), session_of(gateway, "/mcp", key=None) as session:
        assert [tool.name for tool in (await session.list_tools()).tools] == ["calc__add"]
        result = await session.call_tool("calc__add", {"a": 1, "b": 1})
    assert isinstance(result.content[0], types.TextContent) and result.content[0].text == "2.0"


async def test_a_keys_own_tool_calls_per_minute_holds(calc: tuple[str, FakeMcp]) -> None:
    limits = ProjectLimits.model_validate(
        {"tool_calls_per_minute": 100, "keys": {"default": {"tool_calls_per_minute": 1}}}
    )
    gateway = Gateway(settings(calc[0], limits=limits))
    async with gateway.lifespan(), session_of(gateway, "/mcp/calc") as session:
        first = await session.call_tool("add", {"a": 1, "b": 2})
        second = await session.call_tool("add", {"a": 3, "b": 4})
        assert gateway.limiter is not None
        usage = {(use.kind.value, use.name): use for use in await limit_usage(gateway.limiter, "proj")}
    assert not first.isError and second.isError
    # The refused call reserved nothing: the project counts the one call made (draining), as the dashboard shows.
    project = usage[("project", "tool_calls_per_minute")]
    assert project.unit == "tool_calls" and project.used is not None and 0 < project.used <= 1
    text = second.content[0].text if isinstance(second.content[0], types.TextContent) else ""
    assert text.startswith("key key_") and "tool_calls_per_minute 1 reached" in text
    assert (second.meta or {})["relaygate/error"]["type"] == "rate_limit_exceeded"


def test_tool_calls_per_minute_belongs_to_projects_and_keys() -> None:
    limits = ProjectLimits.model_validate(
        {"tool_calls_per_minute": 5, "keys": {"default": {"tool_calls_per_minute": 2}}}
    )
    assert limits.tool_calls_per_minute == 5 and limits.keys["default"].tool_calls_per_minute == 2
    # Alone it limits no model call: chat calls of the project are not counted against anything.
    assert limits.empty
    for group in ("users", "models"):
        entry = "upstream/gpt-4o" if group == "models" else "default"
        with pytest.raises(ValidationError, match="tool_calls_per_minute limits MCP tool calls"):
            ProjectLimits.model_validate({group: {entry: {"tool_calls_per_minute": 1}}})


async def test_mounted_under_a_prefix_the_endpoint_is_below_it(calc: tuple[str, FakeMcp]) -> None:
    from examples.starlette_app import build_app

    gateway = Gateway(settings(calc[0]))
    app = build_app(gateway)  # the gateway at /llm
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {KEY}"}
    async with gateway.lifespan(), httpx.AsyncClient(transport=transport, headers=headers) as http:
        async with streamable_http_client("http://host/llm/mcp/calc", http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("mul", {"a": 3, "b": 3})
    assert isinstance(result.content[0], types.TextContent) and result.content[0].text == "9.0"


async def test_a_server_that_is_down_is_an_mcp_error_and_an_error_result(calc: tuple[str, FakeMcp]) -> None:
    from mcp.shared.exceptions import McpError

    from tests.servers import free_port

    down = f"http://127.0.0.1:{free_port()}/mcp"
    gateway = Gateway(
        Settings(
            mcp_servers={"calc": McpServerSettings(url=calc[0]), "down": McpServerSettings(url=down)},
            projects=[ProjectSettings(id="proj", keys=[KEY])],
            database=None,
        )
    )
    async with gateway.lifespan():
        async with session_of(gateway, "/mcp/down") as session:
            with pytest.raises(McpError, match="'down' cannot be reached"):
                await session.list_tools()
            result = await session.call_tool("add", {"a": 1, "b": 1})
        assert result.isError and (result.meta or {})["relaygate/error"]["type"] == "mcp_server_unavailable"
        async with session_of(gateway, "/mcp") as session:  # the union leaves it out, and still answers
            names = [tool.name for tool in (await session.list_tools()).tools]
    assert names and all(name.startswith("calc__") for name in names)


@pytest.mark.parametrize("path", ["/mcp", "/mcp/", "/mcp/calc"])
async def test_without_mcp_servers_the_endpoint_is_a_404_in_the_gateways_shape(path: str) -> None:
    gateway = Gateway(Settings(projects=[ProjectSettings(id="proj", keys=[KEY])], database=None))
    transport = httpx.ASGITransport(app=gateway.app)
    async with gateway.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answers = [
            await client.post(path, content=message("tools/list"), headers={"authorization": f"Bearer {KEY}", **JSON}),
            await client.get(path, headers={"authorization": f"Bearer {KEY}"}),
        ]
        refused = await client.post(path, content=message("tools/list"), headers=JSON)  # no key: auth still answers
    for response in answers:
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert error["code"] == "mcp_server_not_found" and error["type"] == "invalid_request_error"
        assert "mcp_servers" in error["message"]
    assert refused.status_code == 401
    assert gateway.mcp_app.tools is None  # nothing to serve: no MCP server made (and the SDK not imported for it)
