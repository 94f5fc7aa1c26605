"""Limits over real HTTP: two ``relaygate serve`` processes sharing one Redis and one database, a restart, and
a client that leaves a stream half-way.

As in ``test_limits.py``, ``upstream/priced`` calls cost exactly $0.0005 each, so a budget of $0.005 affords ten.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
import yaml
from starlette.types import Receive, Scope, Send

from relaygate import Gateway
from relaygate.counters import Counters, RedisCounters
from relaygate.limits.estimate import estimate
from relaygate.pricing import ModelPrice
from relaygate.store import SpendKind, SpendScope, open_store
from tests.conftest import KEY_A, UPSTREAM_KEY
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.recording import read_request, tick_until_disconnect
from tests.servers import relaygate_serve, serve_in_thread
from tests.test_limits import CALL_NANOS, EVER, chat, limiter, settings

pytestmark = pytest.mark.anyio

HEADERS = {"authorization": f"Bearer {KEY_A}"}


def write_config(path: Path, upstream_url: str, database: str, counters: str) -> Path:
    config = {
        "providers": {"upstream": {"kind": "openai", "base_url": upstream_url, "api_key": UPSTREAM_KEY}},
        "projects": [{"id": "proj-a", "keys": [KEY_A], "limits": {"usd_total": 0.005, "requests_per_minute": 1000}}],
        "prices": {"upstream/priced": {"input": 0, "output": 100}},
        "database": database,
        "counters": counters,
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def spread(base_urls: list[str], count: int) -> list[httpx.Response]:
    """``count`` concurrent calls, dealt in turn to the gateways at ``base_urls``."""
    responses: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(headers=HEADERS, timeout=60, limits=limits) as http:

        async def one(i: int) -> None:
            url = base_urls[i % len(base_urls)] + "/v1/chat/completions"
            responses.append(await http.post(url, json=chat()))

        async with anyio.create_task_group() as group:
            for i in range(count):
                group.start_soon(one, i)
    return responses


async def ledger_spend(database: str) -> int:
    async with open_store(database) as store:
        return await store.spend(SpendScope(SpendKind.PROJECT, "proj-a"), *EVER)


async def test_two_gateway_processes_sharing_redis_hold_one_budget(
    tmp_path: Path, upstream_url: str, fake_upstream: FakeOpenAI, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    config = write_config(tmp_path / "relaygate.yaml", upstream_url, database_url, f"{redis_url}?prefix={redis_prefix}")
    with ExitStack() as stack:
        gateways = [stack.enter_context(relaygate_serve(["--config", str(config)], cwd=tmp_path)) for _ in range(2)]
        responses = await spread(gateways, 100)
        by_gateway = [[r for r in responses if str(r.url).startswith(g)] for g in gateways]
    assert sum(r.status_code == 200 for r in responses) == 10
    assert sum(r.status_code == 429 for r in responses) == 90
    assert all(len(answers) == 50 for answers in by_gateway)
    refusal = next(r for r in responses if r.status_code == 429)
    assert refusal.json()["error"]["code"] == "insufficient_quota" and "retry-after" in refusal.headers
    assert "x-ratelimit-remaining-requests" in refusal.headers
    # Both processes wrote their calls to the one ledger before they exited.
    assert await ledger_spend(database_url) == 10 * CALL_NANOS

    # Restarted against an emptied Redis (keys of its own): the spend comes back from the ledger.
    config = write_config(
        tmp_path / "relaygate.yaml", upstream_url, database_url, f"{redis_url}?prefix={redis_prefix}:restarted"
    )
    with relaygate_serve(["--config", str(config)], cwd=tmp_path) as gateway:
        again = await spread([gateway], 20)
    assert {r.status_code for r in again} == {429}
    assert await ledger_spend(database_url) == 10 * CALL_NANOS


async def test_a_stream_the_client_leaves_settles_to_what_was_streamed(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", counters_url, {"usd_total": "0.005"}))
    lim = limiter(gateway)
    key = f"{lim.prefix}:proj-a:project:usd_total:total"
    reserved = 45 * CALL_NANOS // 5
    # The served gateway's counters belong to its server thread; Redis is read through a client of this test's own.
    reader: Counters = lim.counters if counters_url is None else RedisCounters(counters_url.split("?")[0])
    body: dict[str, Any] = chat("endless", stream=True, max_tokens=45)
    with serve_in_thread(gateway.app) as base_url:
        async with reader, httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as http:
            async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                seen = 0
                async for line in response.aiter_lines():
                    seen += "tick" in line
                    if seen == 3:
                        assert await reader.level(key, 0, lim.clock()) == reserved
                        break
            with anyio.fail_after(10):
                while (level := await reader.level(key, 0, lim.clock())) == reserved:
                    await anyio.sleep(0.02)
    assert fake_upstream.disconnected.is_set()
    # At least the three chunks read, "tick " each: 15 bytes, 4 tokens by the estimate; far below the 45 reserved.
    assert level is not None and 4 * CALL_NANOS // 5 <= level < reserved
    assert level % (CALL_NANOS // 5) == 0


async def thinking_upstream(scope: Scope, receive: Receive, send: Send) -> None:
    """A reasoning model thinking: the role chunk, then keep-alive comments only, until the client goes."""
    if scope["type"] != "http":
        return
    await read_request(scope, receive)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    role = {
        "id": "chatcmpl-thinking",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "thinker",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
    }
    await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(role) + b"\n\n", "more_body": True})

    async def ping(_: int) -> None:
        await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})

    await tick_until_disconnect(receive, ping, threading.Event())


async def test_a_stream_the_client_leaves_before_any_text_keeps_its_prompt(
    tmp_path: Path, counters_url: str | None
) -> None:
    # $100 per 1M prompt tokens: the provider has read (and billed) the prompt while the model thinks.
    database = f"sqlite:///{tmp_path / 'relaygate.db'}"
    body: dict[str, Any] = chat("thinker", stream=True, max_tokens=45)
    prompt = estimate("chat", body, 1).prompt_tokens
    with serve_in_thread(thinking_upstream) as upstream:
        gateway = Gateway(
            settings(upstream + "/v1", database, counters_url, {"usd_total": 1}).model_copy(
                update={"prices": {"upstream/thinker": ModelPrice(input=100, output=100)}}
            )
        )
        lim = limiter(gateway)
        key = f"{lim.prefix}:proj-a:project:usd_total:total"
        reserved = (prompt + 45) * 100_000
        reader: Counters = lim.counters if counters_url is None else RedisCounters(counters_url.split("?")[0])
        with serve_in_thread(gateway.app) as base_url:
            async with reader, httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as http:
                async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            assert await reader.level(key, 0, lim.clock()) == reserved
                            break
                with anyio.fail_after(10):
                    while (level := await reader.level(key, 0, lim.clock())) == reserved:
                        await anyio.sleep(0.02)
    assert level == prompt * 100_000  # never zero: the prompt, and nothing streamed
    assert await ledger_spend(database) == level


async def test_two_workers_of_one_serve_hold_one_budget_exactly_and_their_recorders_write_every_call(
    tmp_path: Path, upstream_url: str, fake_upstream: FakeOpenAI, database_url: str, redis_url: str, redis_prefix: str
) -> None:
    config = write_config(tmp_path / "relaygate.yaml", upstream_url, database_url, f"{redis_url}?prefix={redis_prefix}")
    log = tmp_path / "serve.log"
    with relaygate_serve(["--config", str(config), "--workers", "2"], cwd=tmp_path, log=log) as gateway:
        responses = await spread([gateway], 100)
    assert sum(r.status_code == 200 for r in responses) == 10
    assert sum(r.status_code == 429 for r in responses) == 90
    # Each worker ran its own recorder, and each recorder wrote its worker's calls before the worker exited.
    assert log.read_text().count("recorder: started") == 2
    assert await ledger_spend(database_url) == 10 * CALL_NANOS
