"""The tool loop through ``relaygate serve``: real MCP servers (FastMCP over streamable HTTP, SSE and WebSocket),
a fake OpenAI-compatible model that calls tools, the OpenAI SDK, the ledger, limits and an OTLP receiver.

The model (tests/fakes/openai_agent.py) calls the first tool it is offered with arguments from its schema
(``calc__add`` with a = b = 1), then answers ``The tool said: <result>``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import openai
import orjson
import pytest
import yaml

from relaygate.store import CallRecord, open_store
from tests.conftest import KEY_A, KEY_B, UPSTREAM_KEY
from tests.fakes.mcp_servers import FakeMcp, serve_mcp
from tests.fakes.openai_server import FakeOpenAI
from tests.otlp import OtlpReceiver
from tests.servers import free_port, relaygate_serve, serve_in_thread

pytestmark = pytest.mark.anyio

# 5 output tokens a call at $100 per 1M: $0.0005 a model call; proj-b's budget affords two.
BUDGET = 0.0012
MODELS = ("agent", "agent-forever", "agent-parallel")


@dataclass
class Stack:
    url: str
    upstream: FakeOpenAI
    mcp: dict[str, FakeMcp]
    urls: dict[str, str]
    receiver: OtlpReceiver
    database: str


def config(upstream_url: str, servers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "providers": {"upstream": {"kind": "openai", "base_url": upstream_url, "api_key": UPSTREAM_KEY}},
        "projects": [
            {"id": "proj-a", "keys": [KEY_A]},
            {"id": "proj-b", "keys": [KEY_B], "limits": {"usd_total": BUDGET}},
        ],
        "prices": {f"upstream/{model}": {"input": 0, "output": 100} for model in MODELS},
        "database": "sqlite:///ledger.db",
        "mcp_servers": servers,
        "guards": {
            "no_injection": {
                "type": "regex",
                "stage": "input",
                "action": "block",
                "parameters": {"patterns": ["(?i)ignore previous instructions"]},
            },
            "no_pii": {"type": "pii", "stage": "input", "action": "redact"},
            "no_secret_out": {
                "type": "regex",
                "stage": "output",
                "action": "block",
                "parameters": {"patterns": ["sk-[A-Za-z0-9]{8,}"]},
            },
        },
        "mcp": {"max_iterations": 3, "tool_timeout": 2, "allowed_hosts": ["localhost"]},
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("mcp-serve")
    upstream = FakeOpenAI()
    with ExitStack() as stack:
        upstream_url = stack.enter_context(serve_in_thread(upstream)) + "/v1"
        mcp: dict[str, FakeMcp] = {}
        servers: dict[str, dict[str, Any]] = {}
        for name, transport in (("calc", "http"), ("calc_sse", "sse"), ("calc_ws", "ws")):
            url, fake = stack.enter_context(serve_mcp(transport))  # type: ignore[arg-type]
            mcp[name] = fake
            servers[name] = {"url": url, "transport": transport}
        servers["adder"] = {"url": servers["calc"]["url"], "tools": ["add"], "projects": ["proj-b"]}
        receiver = stack.enter_context(OtlpReceiver())
        path = tmp / "relaygate.yaml"
        path.write_text(yaml.safe_dump(config(upstream_url, servers)))
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "60000",
        }
        url = stack.enter_context(relaygate_serve(["--config", str(path)], env=env, cwd=tmp))
        urls = {name: server["url"] for name, server in servers.items()}
        yield Stack(url, upstream, mcp, urls, receiver, f"sqlite:///{tmp / 'ledger.db'}")


@pytest.fixture
def gw(stack: Stack) -> Stack:
    stack.upstream.requests.clear()
    for fake in stack.mcp.values():
        fake.calls.clear()
    return stack


def chat(model: str = "upstream/agent", servers: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "What is 1 + 1?"}],
        "mcp_servers": [{"name": "calc", "type": "in-memory"}] if servers is None else servers,
        "max_tokens": 5,
        **extra,
    }


def post(gw: Stack, body: dict[str, Any], key: str = KEY_A, **headers: str) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}", **headers},
        timeout=30,
    )


def tool_names(request_body: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request_body.get("tools") or ()]


async def test_a_chat_request_gets_an_answer_that_used_the_tool(gw: Stack) -> None:
    response = post(gw, chat())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["choices"][0]["message"]["content"] == "The tool said: 2.0"
    assert answer["choices"][0]["finish_reason"] == "stop"
    # The MCP server saw exactly the call the model asked for.
    assert gw.mcp["calc"].calls == [("add", {"a": 1, "b": 1})]
    first, second = [r.body for r in gw.upstream.requests if r.path.endswith("/chat/completions")]
    assert "calc__add" in tool_names(first) and "mcp_servers" not in first
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "calc__add"
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_calc__add", "content": "2.0"}
    # Two model calls, priced each: the usage and the cost are their sums.
    assert answer["usage"]["prompt_tokens"] == 22 and answer["usage"]["completion_tokens"] == 10
    assert answer["usage"]["cost"] == pytest.approx(0.001)
    assert float(response.headers["x-cost-usd"]) == pytest.approx(0.001)
    # The ledger records the request with both model calls, each priced.
    record = await recorded(gw, response.headers["x-trace-id"])
    assert record.cost_usd == pytest.approx(0.001)
    assert (record.prompt_tokens, record.completion_tokens) == (22, 10)
    assert [attempt["cost_usd"] for attempt in record.attempts] == [pytest.approx(0.0005)] * 2
    assert [attempt["completion_tokens"] for attempt in record.attempts] == [5, 5]


async def recorded(gw: Stack, trace_id: str) -> CallRecord:
    async with open_store(gw.database) as store:
        for _ in range(100):
            calls = await store.calls_of_trace("proj-a", trace_id)
            if calls:
                return calls[0]
            await anyio.sleep(0.1)
    raise AssertionError(f"no call of trace {trace_id} in the ledger")


async def test_a_streamed_request_streams_the_answer_through_the_openai_sdk(gw: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEY_A)
    stream = await client.chat.completions.create(
        model="upstream/agent",
        messages=[{"role": "user", "content": "What is 1 + 1?"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"mcp_servers": [{"name": "calc"}]},
    )
    text, finishes, usage = "", [], None
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            assert not choice.delta.tool_calls  # the MCP calls are the gateway's, never the client's
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
        usage = chunk.usage or usage
    await client.close()
    assert text == "The tool said: 2.0"
    assert finishes == ["stop"]
    assert usage is not None and usage.completion_tokens == 10
    assert gw.mcp["calc"].calls == [("add", {"a": 1, "b": 1})]


async def test_the_loop_s_progress_arrives_as_sse_comments_before_the_answer(gw: Stack) -> None:
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        json=chat(stream=True),
        headers={"authorization": f"Bearer {KEY_A}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    comments = [i for i, line in enumerate(lines) if line.startswith(":")]
    answer = [i for i, line in enumerate(lines) if '"The to"' in line]
    assert comments and answer and comments[0] < answer[0]
    assert lines[comments[0]] == ": relaygate: calling calc__add"
    assert lines[-1] == "data: [DONE]"


@pytest.mark.parametrize("server", ["calc_sse", "calc_ws"])
async def test_servers_over_sse_and_websocket(gw: Stack, server: str) -> None:
    response = post(gw, chat(servers=[{"name": server}]))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "The tool said: 2.0"
    assert gw.mcp[server].calls == [("add", {"a": 1, "b": 1})]


async def test_several_tool_calls_of_one_answer_run_and_all_come_back(gw: Stack) -> None:
    response = post(gw, chat("upstream/agent-parallel"))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "The tool said: 2.0 | 1.0"
    assert sorted(gw.mcp["calc"].names()) == ["add", "mul"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_model_that_calls_tools_forever_stops_at_max_iterations(gw: Stack, stream: bool) -> None:
    response = post(gw, chat("upstream/agent-forever", stream=stream))
    assert response.status_code == 200, response.text
    if stream:
        assert '"finish_reason":"max_iterations"' in response.text
        assert "mcp.max_iterations" in response.text
    else:
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "max_iterations"
        assert "stopped after 3 model calls (mcp.max_iterations)" in choice["message"]["content"]
        assert not choice["message"].get("tool_calls")
    assert len(gw.upstream.models_seen()) == 3
    assert gw.mcp["calc"].names() == ["add", "add"]


@pytest.mark.parametrize(
    ("tool", "said"),
    [
        ("calc__fail", "Error: the tool fail failed: Error executing tool fail: the tool failed: Paris"),
        ("calc__hang", "Error: the tool 'hang' of MCP server 'calc' did not answer within 2 s (mcp.tool_timeout)."),
    ],
)
async def test_a_tool_that_fails_or_hangs_gives_the_model_an_error_result(gw: Stack, tool: str, said: str) -> None:
    body = chat(tool_choice={"type": "function", "function": {"name": tool}})
    response = post(gw, body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == f"The tool said: {said}"


async def test_the_caller_s_own_tools_are_returned_to_the_caller_under_their_own_names(gw: Stack) -> None:
    own = {"type": "function", "function": {"name": "calc__add", "parameters": {"type": "object", "properties": {}}}}
    response = post(gw, chat(tools=[own]))
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [call["function"]["name"] for call in choice["message"]["tool_calls"]] == ["calc__add"]
    sent = gw.upstream.last("/chat/completions").body
    # The MCP tool could not take the caller's name: it got another.
    assert tool_names(sent)[0] == "calc__add" and "calc__add_2" in tool_names(sent)
    assert gw.mcp["calc"].calls == []


@pytest.mark.parametrize(
    ("servers", "status", "param"),
    [
        ("nope", 400, "mcp_servers"),
        ([{"type": "sse"}], 400, "mcp_servers[0].name"),
        ([{"name": 3}], 400, "mcp_servers[0].name"),
        ([{"name": "adder"}], 403, "mcp_servers[0].name"),
        ([{"name": "x", "type": "sse", "server_url": "http://127.0.0.1:9/sse"}], 403, "mcp_servers[0].server_url"),
        ([{"name": "x", "server_url": "not a url"}], 400, "mcp_servers[0].server_url"),
    ],
)
async def test_bad_mcp_servers_get_a_clear_error(gw: Stack, servers: Any, status: int, param: str) -> None:
    response = post(gw, chat(servers=servers))
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert gw.upstream.models_seen() == []


async def test_a_server_that_is_not_configured_is_left_out(gw: Stack) -> None:
    # The seeds' example names LangDB's built-in websearch server: answered without its tools.
    response = post(gw, chat(servers=[{"name": "websearch", "type": "in-memory"}]))
    assert response.status_code == 200, response.text
    assert "tools" not in gw.upstream.last("/chat/completions").body
    assert gw.mcp["calc"].calls == []


async def test_a_request_s_own_server_on_an_allowed_host(gw: Stack) -> None:
    own = gw.urls["calc"].replace("127.0.0.1", "localhost")
    response = post(gw, chat(servers=[{"name": "mine", "server_url": own}]))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "The tool said: 2.0"
    assert "localhost__add" in tool_names(gw.upstream.requests[0].body)
    assert gw.mcp["calc"].calls == [("add", {"a": 1, "b": 1})]


async def test_a_budget_holds_across_the_loop(gw: Stack) -> None:
    response = post(gw, chat("upstream/agent-forever", servers=[{"name": "adder"}]), key=KEY_B)
    # Two model calls fit the budget; the third is refused before it runs.
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "insufficient_quota"
    assert len(gw.upstream.models_seen()) == 2
    again = post(gw, chat("upstream/agent", servers=[{"name": "adder"}]), key=KEY_B)
    assert again.status_code == 429


async def test_the_thread_keeps_the_tool_calls_and_results(gw: Stack) -> None:
    response = post(gw, chat(), **{"x-thread-id": "thread-mcp-1"})
    assert response.status_code == 200
    for _ in range(50):
        listed = httpx.get(
            gw.url + "/v1/threads/thread-mcp-1/messages", headers={"authorization": f"Bearer {KEY_A}"}, timeout=10
        )
        messages = listed.json().get("messages") or []
        if len(messages) >= 4:
            break
        time.sleep(0.1)
    roles = [message["role"] for message in messages]
    assert roles == ["user", "assistant", "tool", "assistant"], messages
    assert messages[1]["tool_calls"][0]["function"]["name"] == "calc__add"
    assert messages[2]["content"] == "2.0"
    assert messages[3]["content"] == "The tool said: 2.0"


async def test_traces_show_a_span_per_model_call_and_per_tool_call_under_the_request(gw: Stack) -> None:
    response = post(gw, chat("upstream/agent-parallel"))
    assert response.status_code == 200
    trace_id = response.headers["x-trace-id"]
    mine = gw.receiver.wait_for_spans(lambda span: span.trace_id == trace_id, count=5)
    mine = [span for span in mine if span.trace_id == trace_id]
    server = next(span for span in mine if span.kind == "SERVER")
    clients = [span for span in mine if span.kind == "CLIENT"]
    executes = [span for span in mine if span.name.startswith("execute_tool")]
    assert len(clients) == 2 and len(executes) == 2
    assert all(span.parent_span_id == server.span_id for span in [*clients, *executes])
    assert {span.attributes["gen_ai.tool.name"] for span in executes} == {"add", "mul"}
    assert {span.attributes["gen_ai.tool.call.id"] for span in executes} == {"call_0", "call_1"}
    assert all(span.attributes["gen_ai.operation.name"] == "execute_tool" for span in executes)
    assert all(span.attributes["relaygate.mcp.server"] == "calc" for span in executes)


async def test_a_server_that_is_down_gives_the_model_a_clear_result(tmp_path: Path) -> None:
    upstream = FakeOpenAI()
    port = free_port()
    with ExitStack() as stack:
        upstream_url = stack.enter_context(serve_in_thread(upstream)) + "/v1"
        server = ExitStack()
        url, _ = server.enter_context(serve_mcp("http", port=port, abrupt=True))
        path = tmp_path / "relaygate.yaml"
        path.write_text(yaml.safe_dump(config(upstream_url, {"calc": {"url": url}})))
        base = stack.enter_context(relaygate_serve(["--config", str(path)], cwd=tmp_path))
        server.close()  # the MCP server goes away after the gateway listed its tools
        response = httpx.post(
            base + "/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {KEY_A}"}, timeout=30
        )
    assert response.status_code == 200, response.text
    content = response.json()["choices"][0]["message"]["content"]
    assert content.startswith("The tool said: Error: MCP server 'calc' cannot be reached")


async def test_a_server_unreachable_at_start_is_a_warning(tmp_path: Path) -> None:
    upstream = FakeOpenAI()
    with serve_in_thread(upstream) as upstream_base:
        path = tmp_path / "relaygate.yaml"
        down = {"calc": {"url": f"http://127.0.0.1:{free_port()}/mcp"}}
        path.write_text(yaml.safe_dump(config(upstream_base + "/v1", down)))
        log = tmp_path / "serve.log"
        with relaygate_serve(["--config", str(path)], cwd=tmp_path, log=log) as base:
            response = httpx.post(
                base + "/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {KEY_A}"}, timeout=30
            )
        assert "MCP server 'calc' cannot be reached" in log.read_text()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "mcp_server_unavailable"


def forced(tool: str, **extra: Any) -> dict[str, Any]:
    return chat(tool_choice={"type": "function", "function": {"name": tool}}, **extra)


async def test_input_guards_judge_tool_results_before_the_model_reads_them(gw: Stack) -> None:
    response = post(gw, forced("calc__injection", extra={"guards": ["no_injection"]}))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "guard_violation"
    # The injection never reached the model: only the first model call was made.
    assert len(gw.upstream.models_seen()) == 1
    assert gw.mcp["calc"].names() == ["injection"]


async def test_a_redacting_input_guard_redacts_tool_results(gw: Stack) -> None:
    response = post(gw, forced("calc__email", extra={"guards": ["no_pii"]}))
    assert response.status_code == 200, response.text
    assert "ann@example.com" not in response.text
    second = gw.upstream.last("/chat/completions").body
    assert second["messages"][-1]["role"] == "tool" and "ann@example.com" not in second["messages"][-1]["content"]


@pytest.mark.parametrize("stream", [False, True])
async def test_output_guards_judge_the_final_answer(gw: Stack, stream: bool) -> None:
    response = post(gw, forced("calc__secret", extra={"guards": ["no_secret_out"]}, stream=stream))
    assert "guard_violation" in response.text
    if stream:
        text = "".join(
            (choice.get("delta") or {}).get("content") or ""
            for line in response.text.splitlines()
            if line.startswith("data: {") and '"choices"' in line
            for choice in orjson.loads(line[len("data: ") :])["choices"]
        )
        assert "sk-" not in text
    else:
        assert response.status_code == 400 and "sk-abcdefghijklmnop" not in response.text
    assert len(gw.upstream.models_seen()) == 2


async def test_a_client_that_leaves_stops_the_loop(gw: Stack) -> None:
    # Each tool call hangs past tool_timeout (2 s); the client leaves as the first one starts.
    body = {**forced("calc__hang", stream=True), "model": "upstream/agent-forever"}
    with httpx.stream(
        "POST", gw.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY_A}"}, timeout=30
    ) as response:
        for line in response.iter_lines():
            if line.startswith(": relaygate: calling"):
                break
    time.sleep(3)
    # Without the client, no second model call was made.
    assert len(gw.upstream.models_seen()) == 1
    assert gw.mcp["calc"].names() == ["hang"]


async def test_the_responses_api_runs_the_loop_too(gw: Stack) -> None:
    response = httpx.post(
        gw.url + "/v1/responses",
        json={"model": "upstream/agent", "input": "What is 1 + 1?", "mcp_servers": [{"name": "calc"}]},
        headers={"authorization": f"Bearer {KEY_A}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    texts = [
        part["text"]
        for item in response.json()["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    ]
    assert texts == ["The tool said: 2.0"]
    assert gw.mcp["calc"].calls == [("add", {"a": 1, "b": 1})]


async def test_the_responses_api_streams_the_loop(gw: Stack) -> None:
    body = {"model": "upstream/agent", "input": "What is 1 + 1?", "mcp_servers": [{"name": "calc"}], "stream": True}
    response = httpx.post(gw.url + "/v1/responses", json=body, headers={"authorization": f"Bearer {KEY_A}"}, timeout=30)
    assert response.status_code == 200, response.text
    events = [line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    completed = orjson.loads(response.text.strip().splitlines()[-1].removeprefix("data: "))
    texts = [part["text"] for item in completed["response"]["output"] for part in item.get("content", [])]
    assert texts == ["The tool said: 2.0"]


async def test_a_streamed_call_of_the_caller_s_own_tool_reaches_the_caller(gw: Stack) -> None:
    client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=KEY_A)
    own = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    stream = await client.chat.completions.create(
        model="upstream/agent-parallel",
        messages=[{"role": "user", "content": "Look it up."}],
        tools=cast(Any, [own]),
        stream=True,
        extra_body={"mcp_servers": [{"name": "calc"}]},
    )
    calls: dict[int, str] = {}
    finishes = []
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                if call.function and call.function.name:
                    calls[call.index] = call.function.name
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    await client.close()
    # The model called lookup and calc__add at once: the caller gets its own call, the MCP one is not run.
    assert calls == {0: "lookup"}
    assert finishes == ["tool_calls"]
    assert gw.mcp["calc"].calls == []
