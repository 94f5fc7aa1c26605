"""The MCP session pool against real MCP servers (FastMCP) on 127.0.0.1, over each transport."""

from __future__ import annotations

import logging

import pytest

from relaygate.mcp import McpPool, ServerUnavailable, ToolTimeout, UnknownServer, UnknownTool
from relaygate.settings import McpServerSettings, McpSettings, Settings
from tests.fakes.mcp_servers import FakeMcp, Transport, serve_mcp
from tests.servers import free_port

pytestmark = pytest.mark.anyio

TRANSPORTS: list[Transport] = ["http", "sse", "ws"]


def pool_for(url: str, transport: Transport, **options: object) -> McpPool:
    server = McpServerSettings(url=url, transport=transport)
    return McpPool({"calc": server}, options=McpSettings.model_validate(options))


def text_of(result: object) -> str:
    return "".join(getattr(block, "text", "") for block in getattr(result, "content", []))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_lists_and_calls_tools_over_each_transport(transport: Transport) -> None:
    with serve_mcp(transport) as (url, fake):
        pool = pool_for(url, transport)
        await pool.start()
        try:
            names = [tool.name for tool in await pool.list_tools("calc")]
            assert {"add", "mul", "fail", "hang"} <= set(names)
            result = await pool.call_tool("calc", "add", {"a": 2, "b": 3})
            assert not result.isError
            assert text_of(result) == "5.0"
            failed = await pool.call_tool("calc", "fail", {"reason": "bad input"})
            assert failed.isError and "bad input" in text_of(failed)
        finally:
            await pool.aclose()
        assert fake.names() == ["add", "fail"]


async def test_one_session_serves_many_calls_and_the_tool_list_is_cached() -> None:
    with serve_mcp("http") as (url, fake):
        pool = pool_for(url, "http")
        try:
            first = await pool.list_tools("calc")
            connection = pool._connections["calc"]
            for _ in range(3):
                await pool.call_tool("calc", "mul", {"a": 2, "b": 2})
                assert await pool.list_tools("calc") == first
            assert pool._connections["calc"] is connection
        finally:
            await pool.aclose()
        assert fake.names() == ["mul"] * 3


async def test_a_list_changed_notification_refreshes_the_tools() -> None:
    with serve_mcp("http") as (url, _):
        pool = pool_for(url, "http")
        try:
            assert "extra" not in [tool.name for tool in await pool.list_tools("calc")]
            await pool.call_tool("calc", "grow", {})
            for _ in range(100):
                if "extra" in [tool.name for tool in await pool.list_tools("calc")]:
                    break
                import anyio

                await anyio.sleep(0.02)
            assert "extra" in [tool.name for tool in await pool.list_tools("calc")]
        finally:
            await pool.aclose()


async def test_only_the_configured_tools_are_offered_and_callable() -> None:
    with serve_mcp("http") as (url, fake):
        server = McpServerSettings(url=url, tools=["add"])
        pool = McpPool({"calc": server})
        try:
            assert [tool.name for tool in await pool.list_tools("calc")] == ["add"]
            with pytest.raises(UnknownTool):
                await pool.call_tool("calc", "mul", {"a": 1, "b": 1})
        finally:
            await pool.aclose()
        assert fake.calls == []


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_call_past_its_timeout_is_a_tool_timeout() -> None:
    with serve_mcp("http", abrupt=True) as (url, _):
        pool = pool_for(url, "http", tool_timeout=0.2)
        try:
            with pytest.raises(ToolTimeout, match=r"within 0.2 s \(mcp.tool_timeout\)"):
                await pool.call_tool("calc", "hang", {"seconds": 1})
            # The session is still usable (a timeout given to the call overrides mcp.tool_timeout).
            assert text_of(await pool.call_tool("calc", "add", {"a": 1, "b": 1}, timeout=10)) == "2.0"
        finally:
            await pool.aclose()


async def test_an_unreachable_server_is_a_warning_at_start_and_unavailable_when_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    pool = pool_for(url, "http", connect_timeout=2)
    with caplog.at_level(logging.WARNING, logger="relaygate.mcp"):
        await pool.start()
    assert "MCP server 'calc' cannot be reached" in caplog.text
    try:
        with pytest.raises(ServerUnavailable, match="cannot be reached"):
            await pool.call_tool("calc", "add", {"a": 1, "b": 1})
        with pytest.raises(UnknownServer):
            await pool.list_tools("nope")
    finally:
        await pool.aclose()


# A server stopped as a killed process would leaves its event streams' tasks to be cancelled with its loop.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_dropped_session_is_reopened(transport: Transport) -> None:
    fake = FakeMcp()
    with serve_mcp(transport, fake, abrupt=True) as (url, _):
        pool = pool_for(url, transport)
        await pool.call_tool("calc", "add", {"a": 1, "b": 1})
    # The server went away and comes back on the same port: the pool's session with it is gone.
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        with serve_mcp(transport, fake, port=port, abrupt=True):
            result = await pool.call_tool("calc", "add", {"a": 2, "b": 2})
            assert text_of(result) == "4.0"
    finally:
        await pool.aclose()
    assert fake.names() == ["add", "add"]


def test_settings_check_urls_and_names() -> None:
    with pytest.raises(ValueError, match="does not fit transport 'ws'"):
        McpServerSettings(url="http://127.0.0.1/mcp", transport="ws")
    with pytest.raises(ValueError, match="MCP server name"):
        Settings.model_validate({"mcp_servers": {"bad name": {"url": "http://127.0.0.1/mcp"}}})
    with pytest.raises(ValueError, match="no such project"):
        Settings.model_validate(
            {
                "projects": [{"id": "a"}],
                "mcp_servers": {"calc": {"url": "http://127.0.0.1/mcp", "projects": ["b"]}},
            }
        )
    with pytest.raises(ValueError, match="allowed_hosts"):
        McpSettings(allowed_hosts=["http://example.com"])
    options = McpSettings(allowed_hosts=["tools.example.com", "*.corp.example"])
    assert options.allows("tools.example.com") and options.allows("a.corp.example")
    assert not options.allows("example.com") and not options.allows("corp.example")
