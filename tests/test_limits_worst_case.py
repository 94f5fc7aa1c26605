"""What a limited call reserves: the worst case of everything it may reach and everything it may cost.

The model's output cap from the catalogue, Anthropic's tool prompt, attachments, virtual models (every target
the call may be routed to), registered model names, and the guards' own model calls; then what a call that
ends without usage settles to. Both counter backends, as in ``test_limits.py``, whose prices these share:
``upstream/priced`` costs $100 per 1M output tokens and nothing for input.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from relaygate import Gateway, Settings
from relaygate.context import RequestContext
from relaygate.ledger.records import call_record
from relaygate.limits.config import ProjectLimits
from relaygate.limits.estimate import ANTHROPIC_TOOLS_TOKENS, estimate
from relaygate.pricing import ModelPrice
from relaygate.settings import (
    BreakerSettings,
    ProjectSettings,
    ProviderSettings,
    RetrySettings,
    Timeouts,
    VirtualModelSettings,
)
from relaygate.store import ModelEntry, ModelPrices, SpendKind, SpendScope
from tests.conftest import KEY_A, UPSTREAM_KEY
from tests.fakes.openai_server import FakeOpenAI
from tests.test_limits import CALL_NANOS, PRICES, T, burst, chat, client, level, limiter, settings, spent
from tests.test_limits_attachments import data_url, pdf

pytestmark = pytest.mark.anyio


def gateway_with(upstream_url: str, counters: str | None, limits: dict[str, Any], **extra: Any) -> Gateway:
    providers = {
        "upstream": ProviderSettings(kind="openai", base_url=upstream_url, api_key=UPSTREAM_KEY),
        "claude": ProviderSettings(kind="anthropic", base_url="http://127.0.0.1:1/v1", api_key="k"),
        **extra.pop("providers", {}),
    }
    # Guards given here are the project's own, applied to every call.
    guards = extra.pop("guards", {})
    project = ProjectSettings(
        id="proj-a", keys=[KEY_A], limits=ProjectLimits.model_validate(limits), guards=list(guards)
    )
    return Gateway(
        Settings(
            providers=providers,
            projects=[project],
            database=extra.pop("database", "sqlite:///:memory:"),
            counters=counters,
            prices={**PRICES, **extra.pop("prices", {})},
            retry=RetrySettings(max_attempts=1),
            breaker=BreakerSettings(enabled=False),
            guards=guards,
            **extra,
        )
    )


def apart(counters: str | None, name: str) -> str | None:
    """The Redis counters of another gateway that must not share this test's keys."""
    return counters.replace("?prefix=", f"?prefix={name}:") if counters else None


def context() -> RequestContext:
    return RequestContext(project_id="proj-a")


async def test_a_request_without_max_tokens_is_reserved_at_the_models_listed_output_cap(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    # gpt-5 (the catalogue's price, $10 per 1M output tokens) writes up to 128,000 tokens: $1.28 at worst.
    gateway = Gateway(settings(upstream_url, "sqlite:///:memory:", counters_url, {"usd_total": "1.20"}))
    body = {"model": "upstream/gpt-5", "messages": [{"role": "user", "content": "Hi"}]}
    async with gateway.lifespan(), client(gateway) as http:
        uncapped = await http.post("/v1/chat/completions", json=body)
        capped = await http.post("/v1/chat/completions", json={**body, "max_completion_tokens": 100_000})
    assert uncapped.status_code == 429 and uncapped.json()["error"]["code"] == "insufficient_quota"
    assert capped.status_code == 200


async def test_an_anthropic_call_with_tools_reserves_anthropics_tool_prompt(
    upstream_url: str, counters_url: str | None
) -> None:
    gateway = gateway_with(upstream_url, counters_url, {"tokens_per_minute": 100_000})
    limiter(gateway).clock = lambda: T
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = {"model": "claude/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10}
    async with gateway.lifespan():
        plain = await limiter(gateway).admit(context(), "chat", body)
        with_tools = await limiter(gateway).admit(context(), "chat", {**body, "tools": tools})
    assert plain is not None and with_tools is not None
    assert with_tools.worst.targets["claude/claude-sonnet-4-5"].estimate.prompt_tokens == (
        estimate("chat", {**body, "tools": tools}, 1).prompt_tokens + ANTHROPIC_TOOLS_TOKENS
    )
    assert plain.worst.targets["claude/claude-sonnet-4-5"].estimate.prompt_tokens == (
        estimate("chat", body, 1).prompt_tokens
    )


READER = {"upstream/reader": ModelPrice(input=1, output=100)}  # $1 per 1M prompt tokens


def with_parts(*parts: dict[str, Any], model: str = "upstream/reader") -> dict[str, Any]:
    content = [{"type": "text", "text": "Summarise"}, *parts]
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 5}


async def test_a_pdf_is_reserved_by_its_pages_not_as_one_image(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    # 100 pages at 5,000 tokens: $0.50 of prompt at $1 per 1M; one image's 3,000 tokens would be $0.003.
    gateway = gateway_with(upstream_url, counters_url, {"usd_total": "0.10"}, prices=READER)
    document = {"type": "image_url", "image_url": {"url": data_url("application/pdf", pdf(100, compressed=True))}}
    picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    async with gateway.lifespan(), client(gateway) as http:
        refused = await http.post("/v1/chat/completions", json=with_parts(document))
        admitted = await http.post("/v1/chat/completions", json=with_parts(picture))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "insufficient_quota"
    assert admitted.status_code == 200


async def test_an_attachment_the_gateway_cannot_size_is_refused_under_a_budget_unless_a_bound_is_set(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    file_id = {"type": "file", "file": {"file_id": "file-abc123"}}
    video = {"type": "image_url", "image_url": {"url": "https://example.com/talk.mp4"}}
    budget = gateway_with(upstream_url, counters_url, {"usd_total": 1}, prices=READER)
    bounded = gateway_with(
        upstream_url,
        apart(counters_url, "bounded"),
        {"usd_total": 1, "tokens_per_minute": 10**6, "unsized_attachment_tokens": 50_000},
    )
    rates = gateway_with(upstream_url, apart(counters_url, "rates"), {"tokens_per_minute": 10**6})
    for gateway in (bounded, rates):
        limiter(gateway).clock = lambda: T
    async with budget.lifespan(), bounded.lifespan(), rates.lifespan():
        async with client(budget) as http:
            refused = await http.post("/v1/chat/completions", json=with_parts(file_id))
            refused_video = await http.post("/v1/chat/completions", json=with_parts(video, video))
        async with client(bounded) as http:
            held = await http.post("/v1/chat/completions", json=with_parts(file_id, video, model="upstream/priced"))
        async with client(rates) as http:
            counted = await http.post("/v1/chat/completions", json=with_parts(file_id, model="upstream/priced"))
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "unsized_attachment" and error["param"] == "messages[0].content[1]"
    assert "messages[0].content[1] cannot be sized" in error["message"]
    assert refused_video.status_code == 403 and refused_video.json()["error"]["param"] == "messages[0].content[1]"
    plain = estimate("chat", with_parts(), 1).prompt_tokens
    assert held.status_code == 200
    assert int(held.headers["x-ratelimit-remaining-tokens"]) == 10**6 - (plain + 2 * 50_000 + 5)
    assert counted.status_code == 200 and int(counted.headers["x-ratelimit-remaining-tokens"]) == 10**6 - (plain + 5)


# The cheap target answers after a second, so that no call of a burst settles before all are admitted.
SMART = {"smart": VirtualModelSettings(targets=["upstream/sleep-1", "upstream/priced"])}
CHEAP = {"upstream/sleep-1": ModelPrice(input=0, output=1)}  # a hundredth of upstream/priced
CHEAP_NANOS = CALL_NANOS // 100


def virtual_body(model: str) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    if model == "router/dynamic":
        body["router"] = {"type": "fallback", "targets": ["upstream/sleep-1", "upstream/priced"]}
    return body


@pytest.mark.parametrize("model", ["smart", "router/smart", "router/dynamic"])
async def test_a_virtual_model_is_held_to_the_budget_at_its_dearest_target(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None, model: str
) -> None:
    # Every call is served by the cheap first target, but might have fallen back to the dear one: the
    # budget admits ten at the dear one's worst case, however little they turn out to cost.
    limits = {"usd_total": "0.005", "requests_per_minute": 1000}
    gateway = gateway_with(upstream_url, counters_url, limits, models=SMART, prices=CHEAP)
    limiter(gateway).clock = lambda: T
    async with gateway.lifespan(), client(gateway) as http:
        responses = await burst(http, [virtual_body(model) for _ in range(100)])
        assert await spent(gateway) == 10 * CHEAP_NANOS
        assert await level(gateway, "project:usd_total:total") == 10 * CHEAP_NANOS
    assert sorted(r.status_code for r in responses) == [200] * 10 + [429] * 90
    assert all(r.headers["x-model-name"] == "sleep-1" for r in responses if r.status_code == 200)
    assert {r.headers["x-ratelimit-limit-requests"] for r in responses} == {"1000"}
    assert sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in responses if r.status_code == 200) == (
        list(range(990, 1000))
    )


async def test_a_virtual_model_holds_each_targets_own_limits_and_keeps_only_the_one_that_served(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    models = {"upstream/sleep-1": {"usd_total": 1, "requests_per_minute": 5}, "upstream/priced": {"usd_total": 1}}
    gateway = gateway_with(upstream_url, counters_url, {"models": models}, models=SMART, prices=CHEAP)
    limiter(gateway).clock = lambda: T
    async with gateway.lifespan():
        admission = await limiter(gateway).admit(context(), "chat", virtual_body("smart"))
        assert admission is not None
        charged = {(item.scope.id, item.name): item.charge.amount for item in admission.items}
        assert charged == {
            ("upstream/sleep-1", "usd_total"): CHEAP_NANOS,
            ("upstream/sleep-1", "requests_per_minute"): 1,
            ("upstream/priced", "usd_total"): CALL_NANOS,
        }
        await limiter(gateway).settle(admission, context())  # never sent: everything goes back
        assert await level(gateway, "model:upstream%2Fpriced:usd_total:total") == 0
        async with client(gateway) as http:
            served = await http.post("/v1/chat/completions", json=virtual_body("smart"))
        assert served.status_code == 200 and served.headers["x-model-name"] == "sleep-1"
        assert await level(gateway, "model:upstream%2Fsleep-1:usd_total:total") == CHEAP_NANOS
        assert await level(gateway, "model:upstream%2Fsleep-1:requests_per_minute") == 1
        assert await level(gateway, "model:upstream%2Fpriced:usd_total:total") == 0


async def test_a_virtual_model_with_a_target_of_no_price_is_refused_under_a_budget(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    models = {"smart": VirtualModelSettings(targets=["upstream/priced", "upstream/no-price-known"])}
    gateway = gateway_with(upstream_url, counters_url, {"usd_per_day": 1}, models=models)
    async with gateway.lifespan(), client(gateway) as http:
        refused = await http.post("/v1/chat/completions", json=virtual_body("smart"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_priced"
    assert "upstream/no-price-known (a target of 'smart') has no price" in refused.json()["error"]["message"]
    assert fake_upstream.requests == []


@pytest.mark.parametrize("limits", [{"usd_total": 1}, {"models": {"upstream/served": {"requests_per_minute": 1}}}])
async def test_a_registered_name_is_limited_as_the_model_it_is_served_as(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None, limits: dict[str, Any]
) -> None:
    gateway = gateway_with(upstream_url, counters_url, limits)
    limiter(gateway).clock = lambda: T
    assert gateway.ledger is not None
    body = {"model": "upstream/alias", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    async with gateway.lifespan(), client(gateway) as http:
        price = ModelPrices(input=0, output=1)
        entry = ModelEntry(name="alias", provider="upstream", model_name_in_provider="served", prices=price)
        await gateway.ledger.store.register_model(entry)
        await gateway.ledger.reload_prices()
        responses = [await http.post("/v1/chat/completions", json=body) for _ in range(2)]
        budget = await level(gateway, "project:usd_total:total")
    assert responses[0].status_code == 200 and responses[0].headers["x-model-name"] == "served"
    if "usd_total" in limits:
        assert responses[1].status_code == 200
        assert budget == 2 * CHEAP_NANOS  # at the registered price
    else:
        assert responses[1].status_code == 429
        assert responses[1].json()["error"]["message"].startswith("model upstream/served of project proj-a")


JUDGE = {"upstream/judge": ModelPrice(input=0, output=100)}  # the fake judge uses 5 output tokens: $0.0005


def judged(upstream_url: str, counters: str | None, limits: dict[str, Any], **parameters: Any) -> Gateway:
    guard = {"template": "toxicity", "model": "upstream/judge", "max_tokens": 16, **parameters}
    judge = {"type": "llm_judge", "stage": "input", "action": "block", "parameters": guard}
    return gateway_with(upstream_url, counters, limits, prices=JUDGE, guards={"tox": judge})


async def test_a_budget_holds_the_model_calls_of_the_guards_too(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    # A call reserves its model's $0.0005 and its judge's 16 tokens at $100 per 1M ($0.0016, for the one window
    # max_windows allows); it spends $0.001.
    gateway = judged(upstream_url, counters_url, {"usd_total": "0.021"}, max_windows=1)
    async with gateway.lifespan(), client(gateway) as http:
        responses = await burst(http, [chat() for _ in range(100)])
        budget = await level(gateway, "project:usd_total:total")
        recorded = await spent(gateway)
    admitted = sum(r.status_code == 200 for r in responses)
    assert 10 <= admitted <= 21
    assert recorded == budget == admitted * 2 * CALL_NANOS <= 21 * CALL_NANOS


async def test_a_guard_blocked_call_keeps_what_its_judge_cost(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    gateway = judged(upstream_url, counters_url, {"usd_total": 1})
    async with gateway.lifespan(), client(gateway) as http:
        blocked = await http.post("/v1/chat/completions", json=chat(content="you idiot", extra={"user": {"id": "ann"}}))
        budget = await level(gateway, "project:usd_total:total")
        recorded = await spent(gateway)
        by_ann = await spent(gateway, SpendScope(SpendKind.USER, "ann", "proj-a"))
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == "guard_violation"
    assert recorded == budget == CALL_NANOS  # the judge's 5 tokens
    assert by_ann == CALL_NANOS  # recorded under the user, so that a restart reloads it for the user's budgets


async def test_budgets_and_the_ledger_count_a_call_in_the_period_of_its_start(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    # The request came in half a second before midnight (UTC) and is admitted just after it.
    midnight = datetime(2030, 5, 2, tzinfo=UTC).timestamp()
    gateway = gateway_with(upstream_url, counters_url, {"usd_per_day": 1})
    limiter(gateway).clock = lambda: midnight + 0.1
    ctx = context()
    ctx.started_at -= 0.6
    async with gateway.lifespan():
        admission = await limiter(gateway).admit(ctx, "chat", chat())
        assert admission is not None
        await limiter(gateway).settle(admission, ctx)
    assert [item.charge.key.rsplit(":", 1)[-1] for item in admission.items] == ["2030-05-01"]
    assert abs(ctx.started_wall - (midnight - 0.5)) < 0.05
    record = call_record(ctx, status=200, endpoint="chat", call_id=uuid.uuid4(), guard_costs=[])
    assert record.started_at == datetime.fromtimestamp(ctx.started_wall, UTC)
    assert record.started_at.date().isoformat() == "2030-05-01"


async def test_a_guard_whose_model_has_no_price_is_refused_under_a_budget(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    gateway = judged(upstream_url, counters_url, {"usd_total": 1}, model="upstream/judge-unpriced")
    rates = judged(
        upstream_url, apart(counters_url, "rates"), {"requests_per_minute": 5}, model="upstream/judge-unpriced"
    )
    async with gateway.lifespan(), rates.lifespan(), client(gateway) as http, client(rates) as http_rates:
        refused = await http.post("/v1/chat/completions", json=chat())
        allowed = await http_rates.post("/v1/chat/completions", json=chat())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_priced"
    assert "Guard 'tox' calls upstream/judge-unpriced, which has no price" in refused.json()["error"]["message"]
    assert allowed.status_code == 200


DEAR = {"upstream/sleep-1": ModelPrice(input=100, output=100)}  # prompt tokens cost too: $100 per 1M
TOKEN_NANOS = 100_000


async def test_a_call_that_got_no_answer_keeps_what_the_provider_may_have_billed(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    # The provider answers after a second; the gateway waits 0.2 s. A whole answer may still be written and
    # billed: its whole reservation stays. A stream is stopped when the gateway closes it: its prompt stays.
    slow = ProviderSettings(
        kind="openai", base_url=upstream_url, api_key=UPSTREAM_KEY, timeouts=Timeouts(read=0.2, first_chunk=0.2)
    )
    gateway = gateway_with(upstream_url, counters_url, {"usd_total": 1}, prices=DEAR, providers={"upstream": slow})
    body = chat("sleep-1")
    prompt = estimate("chat", body, 1).prompt_tokens
    async with gateway.lifespan(), client(gateway) as http:
        whole = await http.post("/v1/chat/completions", json=body)
        after_whole = await level(gateway, "project:usd_total:total")
        stream = await http.post("/v1/chat/completions", json={**body, "stream": True})
        after_stream = await level(gateway, "project:usd_total:total")
        recorded = await spent(gateway)
    assert whole.status_code == 504 and stream.status_code == 504
    assert after_whole == (prompt + 5) * TOKEN_NANOS
    assert after_stream == after_whole + prompt * TOKEN_NANOS
    assert recorded == after_stream  # the ledger records the same, so a restart reloads it


async def test_a_call_the_provider_refused_costs_nothing_and_one_that_never_left_nothing(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    prices = {"upstream/status-429": ModelPrice(input=100, output=100)}
    gateway = gateway_with(upstream_url, counters_url, {"usd_total": 1}, prices=prices)
    async with gateway.lifespan(), client(gateway) as http:
        refused = await http.post("/v1/chat/completions", json=chat("status-429"))
        streamed = await http.post("/v1/chat/completions", json=chat("status-429", stream=True))
        held = await level(gateway, "project:usd_total:total")
        admission = await limiter(gateway).admit(context(), "chat", chat("status-429", stream=True))
        assert admission is not None
        await limiter(gateway).settle(admission, context())  # admitted, then never sent
        after = await level(gateway, "project:usd_total:total")
    assert refused.status_code == 429 and streamed.status_code == 429
    assert held == after == 0


async def test_a_judge_that_may_read_a_long_text_in_windows_reserves_every_window(
    upstream_url: str, fake_upstream: FakeOpenAI, counters_url: str | None
) -> None:
    # $0.004 holds the model's $0.0005 and one window's $0.0016, not the five windows max_windows allows.
    outcomes = []
    for windows in (1, 5):
        gateway = judged(upstream_url, counters_url, {"usd_total": "0.004"}, max_windows=windows)
        async with gateway.lifespan(), client(gateway) as http:
            outcomes.append(await http.post("/v1/chat/completions", json=chat()))
    assert outcomes[0].status_code == 200
    assert outcomes[1].status_code == 429 and outcomes[1].json()["error"]["code"] == "insufficient_quota"
