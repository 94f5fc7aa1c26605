"""The gateway as an MCP server: ``relaygate serve`` serving a real MCP server's tools (FastMCP on 127.0.0.1) at
``/mcp/calc`` and ``/mcp`` to the ``mcp`` SDK's client, behind the gateway's keys, projects, limits, ledger and
traces (a real OTLP receiver)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from relaygate.store import CallRecord, open_store
from tests.conftest import KEY_A, KEY_B
from tests.fakes.mcp_servers import FakeMcp, serve_mcp
from tests.otlp import OtlpReceiver, RecordedSpan
from tests.servers import relaygate_serve

pytestmark = pytest.mark.anyio

KEY_C = "rg-test-key-project-c-limited"
CALC_TOOLS = ["add", "mul", "fail", "hang"]


@dataclass
class Served:
    base_url: str
    calc: FakeMcp
    private: FakeMcp
    receiver: OtlpReceiver
    database: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("mcp-serve")
    database = f"sqlite:///{directory / 'ledger.db'}"
    with ExitStack() as stack:
        calc_url, calc = stack.enter_context(serve_mcp("http"))
        private_url, private = stack.enter_context(serve_mcp("http"))
        receiver = stack.enter_context(OtlpReceiver())
        config = {
            "mcp_servers": {
                "calc": {"url": calc_url, "tools": CALC_TOOLS},
                "private": {"url": private_url, "projects": ["proj-b"]},
            },
            "mcp": {"tool_timeout": 1},
            "projects": [
                {"id": "proj-a", "keys": [KEY_A]},
                {"id": "proj-b", "keys": [KEY_B]},
                {"id": "proj-c", "keys": [KEY_C], "limits": {"tool_calls_per_minute": 2}},
            ],
            "database": database,
        }
        path = directory / "relaygate.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        base_url = stack.enter_context(relaygate_serve(["--config", str(path)], env=env, cwd=directory))
        yield Served(base_url, calc, private, receiver, database)


@asynccontextmanager
async def mcp_client(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def refusal(exc: BaseException) -> httpx.Response:
    """The HTTP answer that made the SDK's client give up (it raises it inside exception groups)."""
    pending: list[BaseException] = [exc]
    while pending:
        found = pending.pop()
        if isinstance(found, httpx.HTTPStatusError):
            return found.response
        if isinstance(found, BaseExceptionGroup):
            pending.extend(found.exceptions)
        for linked in (found.__cause__, found.__context__):
            if linked is not None:
                pending.append(linked)
    raise AssertionError(f"no HTTP refusal in {exc!r}")


async def test_an_mcp_client_lists_and_calls_the_tools_of_mcp_calc_with_a_key(served: Served) -> None:
    before = len(served.calc.calls)
    async with mcp_client(served.base_url + "/mcp/calc", KEY_A) as session:
        tools = await session.list_tools()
        # Only what the config's tools: names is offered (the server also has inject and grow).
        assert sorted(tool.name for tool in tools.tools) == sorted(CALC_TOOLS)
        added = await session.call_tool("add", {"a": 2, "b": 3})
        assert not added.isError and text_of(added) == "5.0"
        failed = await session.call_tool("fail", {"reason": "no luck"})
        assert failed.isError and "no luck" in text_of(failed)
        left_out = await session.call_tool("inject", {"text": "hi"})
        assert left_out.isError and "inject" in text_of(left_out)
    assert served.calc.calls[before:] == [("add", {"a": 2, "b": 3}), ("fail", {"reason": "no luck"})]


async def test_without_a_key_the_client_is_refused_with_401_and_a_bearer_challenge(served: Served) -> None:
    with pytest.raises(BaseException) as raised:  # the SDK raises the 401 inside exception groups
        async with mcp_client(served.base_url + "/mcp/calc", None):
            pass
    answer = refusal(raised.value)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(
        served.base_url + "/mcp/calc",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"authorization": "Bearer not-a-key", "accept": "application/json"},
    )
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert wrong.json()["error"]["code"] == "invalid_api_key"


async def test_mcp_serves_the_union_of_the_projects_servers_named_by_server(served: Served) -> None:
    async with mcp_client(served.base_url + "/mcp", KEY_A) as session:
        names = sorted(tool.name for tool in (await session.list_tools()).tools)
        assert names == sorted(f"calc__{name}" for name in CALC_TOOLS)  # not private's: proj-b's only
        result = await session.call_tool("calc__mul", {"a": 4, "b": 5})
        assert not result.isError and text_of(result) == "20.0"
        unknown = await session.call_tool("private__add", {"a": 1, "b": 1})
        assert unknown.isError and "private__add" in text_of(unknown)
    async with mcp_client(served.base_url + "/mcp", KEY_B) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "private__add" in names and "private__inject" in names and "calc__add" in names
        result = await session.call_tool("private__add", {"a": 1, "b": 2})
        assert text_of(result) == "3.0"
    assert served.private.calls == [("add", {"a": 1, "b": 2})]


async def test_a_project_the_server_is_not_for_is_refused(served: Served) -> None:
    with pytest.raises(BaseException) as raised:
        async with mcp_client(served.base_url + "/mcp/private", KEY_A):
            pass
    answer = refusal(raised.value)
    assert answer.status_code == 403
    missing = httpx.post(
        served.base_url + "/mcp/nowhere",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"authorization": f"Bearer {KEY_A}", "accept": "application/json"},
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "mcp_server_not_found"
    forbidden = httpx.post(
        served.base_url + "/mcp/private",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {}}},
        headers={"authorization": f"Bearer {KEY_A}", "accept": "application/json"},
    )
    assert forbidden.status_code == 403 and "'private'" in forbidden.json()["error"]["message"]


async def test_tool_calls_per_minute_answers_once_reached(served: Served) -> None:
    async with mcp_client(served.base_url + "/mcp/calc", KEY_C) as session:
        results = [await session.call_tool("add", {"a": i, "b": 1}) for i in range(3)]
        listed = await session.list_tools()  # listing is not a tool call
    assert [r.isError for r in results] == [False, False, True]
    refused = results[2]
    assert "tool_calls_per_minute 2 reached" in text_of(refused)
    meta = (refused.meta or {})["relaygate/error"]
    assert meta["type"] == "rate_limit_exceeded" and meta["retry_after"] >= 1
    assert len(listed.tools) == len(CALC_TOOLS)
    assert ("add", {"a": 2, "b": 1}) not in served.calc.calls


def _until(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


async def _mcp_calls(database: str, project: str) -> list[CallRecord]:
    async with open_store(database) as store:
        return [call for call in await store.recent_calls([project], limit=100) if call.endpoint == "mcp"]


async def test_each_call_is_a_ledger_row_and_an_execute_tool_span(served: Served) -> None:
    async with mcp_client(served.base_url + "/mcp/calc", KEY_B) as session:
        await session.call_tool("mul", {"a": 6, "b": 7})
        slow = await session.call_tool("hang", {"seconds": 1})  # the fake sleeps five times that
    assert slow.isError and "did not answer within 1 s" in text_of(slow)

    by_tool: dict[str, CallRecord] = {}
    deadline = time.monotonic() + 10
    while not {"mul", "hang"} <= set(by_tool) and time.monotonic() < deadline:
        by_tool = {row.model: row for row in await _mcp_calls(served.database, "proj-b")}
        time.sleep(0.1)
    mul, hang = by_tool["mul"], by_tool["hang"]
    assert (mul.provider, mul.provider_kind, mul.requested_model) == ("calc", "mcp", "mul")
    assert mul.status == 200 and mul.error is None and mul.latency_ms > 0 and mul.key_id is not None
    assert hang.status == 504 and hang.error == "tool_timeout" and hang.latency_ms > 500
    assert "did not answer within 1 s" in hang.attempts[0]["error"]

    spans: list[RecordedSpan] = _until(lambda: served.receiver.spans_named("execute_tool hang"))
    assert spans, "no execute_tool span reached the receiver"
    span = spans[0]
    attributes = span.attributes
    assert span.kind == "INTERNAL"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["gen_ai.tool.name"] == "hang" and attributes["gen_ai.tool.call.id"]
    assert attributes["relaygate.mcp.server"] == "calc" and attributes["relaygate.project.id"] == "proj-b"
    assert attributes["error.type"] == "tool_timeout" and span.status_code == "ERROR"
    parent = next(s for s in served.receiver.spans if s.span_id == span.parent_span_id)
    assert parent.kind == "SERVER" and parent.name == "POST /mcp/{name}"
    assert parent.trace_id == span.trace_id == hang.trace_id
