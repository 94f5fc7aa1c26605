"""What the request path was made lighter with: the collector tuned after start-up, cheap unique ids, limits
settled in one step, the plans of limits made once, their headers in one pass, periods kept in seconds."""

from __future__ import annotations

import gc
import multiprocessing
import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from relaygate import Gateway, gctune
from relaygate.context import CallerKey, RequestContext, Route, Usage
from relaygate.counters import Adjustment, Charge, InProcessCounters
from relaygate.guards import Guards
from relaygate.guards.base import GuardEnv, GuardSpec
from relaygate.guards.pii import PRECHECK, PiiGuard
from relaygate.ids import new_hex, new_uuid
from relaygate.limits.config import ProjectLimits
from relaygate.limits.periods import GRACE, period_of
from relaygate.limits.plan import Plans
from relaygate.limits.refusals import charged_headers, rate_headers
from relaygate.limits.scopes import Item, Scope
from relaygate.pricing import ModelPrice, PriceBook, cost_of
from relaygate.providers import build_providers
from relaygate.routes import Route as RouteSpec
from relaygate.routes import RouteTable
from relaygate.settings import GuardSettings, ProjectSettings, ProviderSettings, ServerSettings, Settings
from relaygate.store import SpendKind
from tests.conftest import KEY_A, make_settings


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_serve_freezes_start_up_and_raises_the_thresholds(collector: None) -> None:
    thresholds = ServerSettings().gc_thresholds
    assert thresholds is not None and thresholds[0] > 700
    gctune.tune(thresholds)
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() > 0


def test_null_thresholds_leave_the_collector_alone(collector: None) -> None:
    before = gc.get_threshold()
    gctune.tune(ServerSettings(gc_thresholds=None).gc_thresholds)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def _ids(count: int) -> list[str]:
    return [str(new_uuid()) for _ in range(count)]


def test_ids_are_version_4_uuids_unique_within_and_across_processes() -> None:
    ours = [new_uuid() for _ in range(10_000)]
    assert all(value.version == 4 and value.variant == uuid.RFC_4122 for value in ours)
    assert uuid.UUID(str(ours[0])) == ours[0] and len(new_hex()) == 32
    with multiprocessing.get_context("fork").Pool(2) as pool:
        theirs = [uuid.UUID(text) for part in pool.map(_ids, [10_000, 10_000]) for text in part]
    assert len(set(ours) | set(theirs)) == 30_000


@pytest.mark.anyio
async def test_in_process_counters_settle_in_one_synchronous_step() -> None:
    counters = InProcessCounters()
    assert counters.synchronous
    await counters.reserve([Charge("k", 10, 100)], now=0.0)
    counters.adjust_now([Adjustment("k", -4)], now=0.0)
    assert await counters.level("k", 0.0, now=0.0) == 6


# --- limits: plans made once, headers in one pass, periods in seconds ------------------------------------


def _route(model: str = "m") -> Route:
    up = build_providers(Settings(providers={"up": ProviderSettings(kind="openai", base_url="http://x/v1")}))["up"]
    return Route(provider=up, model=model, requested=f"up/{model}")


def test_a_plan_is_made_once_per_project_key_user_and_models_and_again_for_other_limits() -> None:
    plans = Plans("relaygate")
    limits = ProjectLimits.model_validate(
        {"requests_per_minute": 10, "usd_per_day": 1, "users": {"default": {"tokens_per_minute": 100}}}
    )
    ctx = RequestContext(project_id="p")
    body: dict[str, Any] = {"model": "up/m", "extra": {"user": {"id": "u 1"}}}
    plan = plans.plan(limits, ctx, body, [_route()])
    assert plan is not None and plans.plan(limits, ctx, body, [_route()]) is plan
    assert [(p.key, p.limit) for p in plan.planned] == [
        ("relaygate:p:project:requests_per_minute", 10),
        ("relaygate:p:project:usd_per_day", 1_000_000_000),
        ("relaygate:p:user:u%201:tokens_per_minute", 100),
    ]
    assert plans.plan(limits, ctx, {"model": "up/m"}, [_route()]) is not plan  # another user
    assert plans.plan(limits, ctx, body, [_route("n")]) is not plan  # another model
    tighter = ProjectLimits.model_validate({"requests_per_minute": 5})
    changed = plans.plan(tighter, ctx, body, [_route()])
    assert changed is not None and [(p.key, p.limit) for p in changed.planned] == [
        ("relaygate:p:project:requests_per_minute", 5)
    ]
    assert plans.plan(ProjectLimits(), ctx, body, [_route()]) is None  # no limit of model calls
    plans.clear()
    assert len(plans) == 0


def test_the_plan_of_a_call_paid_with_the_callers_key_leaves_the_budgets_out_when_they_ignore_it() -> None:
    plans = Plans("relaygate")
    limits = ProjectLimits.model_validate({"requests_per_minute": 10, "usd_total": 1, "byok_calls": "ignore"})
    own = RequestContext(project_id="p", caller_key=CallerKey("sk-caller"))
    plan = plans.plan(limits, own, {}, [_route()])
    assert plan is not None and not plan.budgeted and [p.name for p in plan.planned] == ["requests_per_minute"]
    paid = plans.plan(limits, RequestContext(project_id="p"), {}, [_route()])
    assert paid is not None and paid.budgeted


@pytest.mark.anyio
async def test_limits_replaced_on_the_limiter_apply_to_the_next_call(upstream_url: str, fake_upstream: Any) -> None:
    settings = make_settings(upstream_url)
    settings = settings.model_copy(
        update={
            "projects": [
                ProjectSettings(
                    id="proj-a", keys=[KEY_A], limits=ProjectLimits.model_validate({"requests_per_minute": 100})
                )
            ]
        }
    )
    gateway = Gateway(settings)
    body = {"model": "upstream/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            headers = {"authorization": f"Bearer {KEY_A}"}
            first = await http.post("/v1/chat/completions", json=body, headers=headers)
            assert first.status_code == 200 and first.headers["x-ratelimit-limit-requests"] == "100"
            assert gateway.limiter is not None
            gateway.limiter.projects["proj-a"] = ProjectLimits.model_validate({"requests_per_minute": 1})
            second = await http.post("/v1/chat/completions", json=body, headers=headers)
            assert second.status_code == 429 and second.headers["x-ratelimit-limit-requests"] == "1"
            gateway.limiter.projects = {"proj-a": ProjectLimits.model_validate({"requests_per_minute": 50})}
            third = await http.post("/v1/chat/completions", json=body, headers=headers)
            assert third.status_code == 200 and third.headers["x-ratelimit-limit-requests"] == "50"


def _item(name: str, limit: int, amount: int, key: str = "k") -> Item:
    return Item(Scope(SpendKind.PROJECT, "p", "p"), name, limit, Charge(key, amount, limit, rate=limit / 60))


def test_the_headers_of_a_charged_call_are_those_rate_headers_gives() -> None:
    rng = random.Random(20)
    names = ["requests_per_minute", "tokens_per_minute", "usd_per_day"]
    for _ in range(500):
        items = [_item(rng.choice(names), rng.choice([1, 5, 60, 1000]), rng.choice([0, 1, 7])) for _ in range(6)]
        levels = [rng.choice([0.0, 1.0, 4.0, 59.5, 999.0]) for _ in items]
        assert charged_headers(items, levels) == rate_headers(items, levels, charged=True)
    assert charged_headers([], []) == []


def test_a_budgets_period_keeps_its_end_in_seconds() -> None:
    now = 1_750_000_000.0
    for name in ("usd_per_day", "usd_per_month"):
        period = period_of(name, now)
        assert period.end_seconds == period.end.timestamp() and not period.endless
        assert period.ttl(now) == max(period.end.timestamp() - now, 0.0) + GRACE
        assert period.left(now) == max(period.end.timestamp() - now, 1.0)
    total = period_of("usd_total", now)
    assert total.endless and total.end_seconds is None and total.ttl(now) == GRACE == total.left(now)


def test_in_process_counters_reserve_all_or_nothing_in_one_pass() -> None:
    counters = InProcessCounters()
    assert counters.reserve_now([Charge("a", 3, 5), Charge("b", 1, 1)], now=0.0).admitted
    refused = counters.reserve_now([Charge("a", 3, 5), Charge("c", 1, 9)], now=0.0)
    assert not refused.admitted and refused.refused == (0,) and refused.levels == (3.0, 0.0)
    missing = counters.reserve_now([Charge("d", 1, 9, loaded=True), Charge("a", 9, 5)], now=0.0)
    assert missing.missing == (0,) and missing.refused == ()
    counters.move("a", -2, 0.0, 60.0, now=1.0)
    counters.move("absent", 5, 0.0, 60.0, now=1.0)
    assert counters.reserve_now([Charge("a", 4, 5)], now=1.0).levels == (1.0,)


# --- pricing, guards, auth -------------------------------------------------------------------------------


def test_an_output_cap_is_worked_out_once_and_again_when_the_prices_change() -> None:
    book = PriceBook()
    assert book.output_cap("openai", "gpt-5") == 128_000
    assert book.output_cap("openai", "gpt-5") == 128_000  # from the cache
    book.register("openai/gpt-5", ModelPrice(input=1, output=1, max_output_tokens=5))
    assert book.output_cap("openai", "gpt-5") == 5
    book.set_project_prices("p", {"openai/gpt-5": ModelPrice(input=1, output=1, max_output_tokens=7)})
    assert book.output_cap("openai", "gpt-5", project_id="p") == 7
    book.clear_project_prices("p")
    assert book.output_cap("openai", "gpt-5", project_id="p") == 5
    book.set_registered({})
    assert book.output_cap("openai", "gpt-5") == 128_000


def test_the_cost_of_usage_sums_its_parts_in_order() -> None:
    price = ModelPrice(input=Decimal("0.15"), output=Decimal("0.6"), cached_input=Decimal("0.075"))
    usage = Usage(prompt_tokens=1000, completion_tokens=200, total_tokens=1200, cached_tokens=400)
    expected = (600 * Decimal("0.15") + 400 * Decimal("0.075") + 200 * Decimal("0.6")) / 1_000_000
    assert cost_of(usage, price) == float(expected)
    assert cost_of(usage, ModelPrice(input=Decimal(1))) is None  # completion tokens without an output rate
    assert cost_of(Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0), ModelPrice(input=Decimal(1))) == 0.0


def test_the_pii_guards_precheck_lets_every_entity_through_and_skips_text_without_any() -> None:
    guard = PiiGuard(GuardSpec("pii", "pii", "input", "redact", {}), GuardEnv())
    assert list(guard.scan("Say something long. No numbers, no addresses; nothing.")) == []
    samples = {
        "e-mail address": "mail jane@example.com now",
        "payment card number": "card 4111 1111 1111 1111",
        "IBAN": "iban GB82 WEST 1234 5698 7654 32",
        "US social security number": "ssn 123-45-6789",
        "phone number": "call +44 20 7946 0958",
        "IP address": "at 2001:db8::1 or 192.168.0.1",
    }
    for label, text in samples.items():
        assert PRECHECK.search(text) is not None
        assert label in {match.detector.label for match in guard.scan(text)}


def test_the_model_calls_of_a_projects_own_guards_are_worked_out_once_per_endpoint() -> None:
    guards = Guards({"no_pii": GuardSettings(type="pii", stage="input", action="redact")}, projects={"p": ["no_pii"]})
    calls = guards.model_calls("p", None, "chat")
    assert calls == () and guards.model_calls("p", None, "chat") is calls
    assert guards.model_calls("p", ["no_pii"], "chat") == ()


# --- routes ----------------------------------------------------------------------------------------------


def test_fixed_paths_are_found_by_lookup_as_their_patterns_would_find_them() -> None:
    table = RouteTable(
        [
            RouteSpec("GET", "/v1/models", "list", "List", "Models"),
            RouteSpec("GET", "/v1/models/{model}", "get", "Get", "Models", patterns={"model": ".+"}),
            RouteSpec("GET", "/threads", "threads", "Threads", "Threads", v1_alias=True),
            RouteSpec("GET", "/threads/{thread_id}", "thread", "Thread", "Threads", v1_alias=True),
        ]
    )

    def by_pattern(path: str) -> tuple[str, dict[str, str]] | None:
        for pattern, template, _ in table._compiled:
            found = pattern.match(path)
            if found is not None:
                prefix = "/v1" if found.groupdict().get("_v1") else ""
                return prefix + template, {k: v for k, v in found.groupdict().items() if not k.startswith("_")}
        return None

    heads, tails = ("", "/v1", "/x"), ("", "/", "\n", "/\n", "//", "/a", "/a/b")
    bases = ("/v1/models", "/threads", "/v1/threads", "/models", "/nothing")
    for path in (head + base + tail for head in heads for base in bases for tail in tails):
        match = table.match(path)
        assert (None if match is None else (match.template, match.params)) == by_pattern(path), path
