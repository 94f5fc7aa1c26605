"""The parts of limits that need no gateway: the worst-case estimate, output caps, the config, periods and the
formats of the headers and messages."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from relaygate import ConfigError, load_settings
from relaygate.cli import shared_limits_warning
from relaygate.context import Route
from relaygate.keys import hash_key, key_digest, key_id
from relaygate.limits.config import ProjectLimits
from relaygate.limits.estimate import (
    ANTHROPIC_TOOLS_TOKENS,
    DEFAULT_MAX_OUTPUT_TOKENS,
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    REQUEST_OVERHEAD,
    Estimate,
    StreamTally,
    estimate,
    images_cost,
    token_cost,
)
from relaygate.limits.periods import period_of
from relaygate.limits.refusals import duration as _duration
from relaygate.limits.refusals import usd_text as _usd
from relaygate.limits.scopes import output_cap as _output_cap
from relaygate.pricing import ModelPrice, PriceBook
from relaygate.providers import build_providers
from relaygate.settings import ProviderSettings, Settings

USER_HI = MESSAGE_OVERHEAD + len(b'"user"') + len(b"Hi")


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "Hi"}], **extra}


def test_the_prompt_is_bounded_by_its_bytes_and_the_overheads() -> None:
    assert estimate("chat", chat(max_tokens=7), 100) == Estimate(REQUEST_OVERHEAD + USER_HI, 7)
    # UTF-8 bytes, not characters: "é" is two bytes and may be two tokens.
    accented = estimate("chat", {"messages": [{"role": "user", "content": "éé"}]}, 100)
    assert accented.prompt_tokens == REQUEST_OVERHEAD + USER_HI - len("Hi") + 4


def test_tools_tool_calls_and_response_format_count_as_their_json() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": {"name": "f"}}]}
    body = chat(tools=tools, response_format={"type": "json_object"})
    body["messages"].append(call)
    plain = estimate("chat", chat(), 1).prompt_tokens
    assert estimate("chat", body, 1).prompt_tokens == (
        plain + len(b'[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]')
        + len(b'{"type":"json_object"}')
        + MESSAGE_OVERHEAD + len(b'"assistant"') + len(b'[{"id":"c1","function":{"name":"f"}}]')
    )  # fmt: skip


def test_anthropic_adds_its_tool_use_system_prompt_whenever_the_adapter_defines_tools() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    called = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": {"name": "f"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    for body in (chat(tools=tools), chat(response_format={"type": "json_object"}), {"messages": called}):
        plain = estimate("chat", body, 1).prompt_tokens
        assert estimate("chat", body, 1, provider_kind="anthropic").prompt_tokens == plain + ANTHROPIC_TOOLS_TOKENS
        assert estimate("chat", body, 1, provider_kind="openai").prompt_tokens == plain
    no_tools = chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}, tools=[])
    assert estimate("chat", no_tools, 1, provider_kind="anthropic") == estimate("chat", no_tools, 1)
    assert ANTHROPIC_TOOLS_TOKENS >= 530  # the largest Anthropic lists (Claude 3 Opus, tool_choice auto)


def test_an_image_costs_a_fixed_bound_whatever_its_size() -> None:
    huge = "data:image/png;base64," + "A" * 1_000_000
    parts = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": huge}}]
    body = {"messages": [{"role": "user", "content": parts}]}
    assert estimate("chat", body, 1).prompt_tokens == REQUEST_OVERHEAD + MESSAGE_OVERHEAD + 6 + 11 + IMAGE_TOKENS


def test_output_is_bounded_by_max_tokens_times_n_or_the_cap() -> None:
    assert estimate("chat", chat(max_completion_tokens=10, max_tokens=99), 500).output_tokens == 10
    assert estimate("chat", chat(max_tokens=10, n=3), 500).output_tokens == 30
    assert estimate("chat", chat(), 500).output_tokens == 500
    assert estimate("chat", chat(max_tokens="many", n=True), 500).output_tokens == 500


def test_embeddings_count_their_input_and_images_their_number() -> None:
    assert estimate("embeddings", {"input": "abcd"}, 99) == Estimate(4)
    assert estimate("embeddings", {"input": ["ab", "cde"]}, 99) == Estimate(5)
    assert estimate("embeddings", {"input": [1, 2, 3]}, 99) == Estimate(3)
    assert estimate("embeddings", {"input": [[1, 2], [3]]}, 99) == Estimate(3)
    assert estimate("images", {"prompt": "a cat", "n": 3}, 99) == Estimate(5, 0, 3)
    assert estimate("images", {"prompt": "a cat"}, 99).images == 1


def test_the_reserved_cost_takes_the_dearest_input_rate_and_rounds_up() -> None:
    price = ModelPrice(input=Decimal(3), cached_input=Decimal("0.3"), cache_write=Decimal("3.75"), output=Decimal(15))
    # 1,000 prompt tokens at the cache-write rate ($3.75 per 1M) and 100 output tokens at $15: $0.00525.
    assert token_cost(1000, 100, price) == 5_250_000
    assert token_cost(1, 0, ModelPrice(input=Decimal("0.0001"))) == 1  # a tenth of a nano-dollar, rounded up
    assert token_cost(10, 5, ModelPrice(input=Decimal("0.02"))) is None  # no output rate: cannot be priced
    assert token_cost(10, 0, None) is None


def test_images_are_reserved_at_the_requested_or_dearest_option() -> None:
    price = PriceBook().price("openai", "gpt-image-1")
    assert price is not None and price.images is not None
    low = images_cost({"quality": "low", "size": "1024x1024"}, 2, price)
    dearest = images_cost({}, 2, price)
    assert low is not None and dearest is not None and 0 < low < dearest
    assert images_cost({}, 1, ModelPrice(input=Decimal(1))) is None


def test_a_stream_tally_counts_text_chunks_and_bytes() -> None:
    tally = StreamTally()
    for delta in ({"role": "assistant", "content": ""}, {"content": "abcdefghij"}, {"content": "k"}):
        tally.on_chunk(None, {"choices": [{"delta": delta}]})
    tally.on_chunk(None, {"choices": [{"delta": {"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}}]})
    tally.on_chunk(None, {"choices": [], "usage": {"total_tokens": 5}})
    assert (tally.chunks, tally.bytes) == (3, 14)
    assert tally.output_tokens == 4  # ceil(14 / 4), more than one per chunk


def test_the_output_cap_comes_from_the_adapter_the_model_or_the_project() -> None:
    settings = Settings(
        providers={
            "claude": ProviderSettings(kind="anthropic", api_key="k", default_max_tokens=2048),
            "up": ProviderSettings(kind="openai", base_url="http://x/v1"),
        }
    )
    providers = build_providers(settings)

    def cap(provider: str, model: str, limits: dict[str, Any]) -> int:
        route = Route(provider=providers[provider], model=model, requested=f"{provider}/{model}")
        return _output_cap(ProjectLimits.model_validate(limits), route)

    models = {"models": {"up/big": {"max_output_tokens": 128000}, "claude/x": {"max_output_tokens": 9}}}
    assert cap("claude", "x", models) == 2048  # what the Anthropic adapter sends when the request sets none
    assert cap("up", "big", models) == 128000
    assert cap("up", "small", {**models, "max_output_tokens": 4096}) == 4096
    assert cap("up", "small", {}) == DEFAULT_MAX_OUTPUT_TOKENS


def test_the_output_cap_of_a_listed_model_comes_from_its_price_before_the_projects_blanket_figure() -> None:
    up = build_providers(Settings(providers={"up": ProviderSettings(kind="openai", base_url="http://x/v1")}))["up"]
    route = Route(provider=up, model="m", requested="up/m")
    assert _output_cap(ProjectLimits.model_validate({"max_output_tokens": 4096}), route, 100_000) == 100_000
    assert _output_cap(ProjectLimits.model_validate({"max_output_tokens": 4096}), route, None) == 4096
    models = ProjectLimits.model_validate({"models": {"up/m": {"max_output_tokens": 5}}})
    assert _output_cap(models, route, 100_000) == 5  # the operator's own figure for that model
    assert DEFAULT_MAX_OUTPUT_TOKENS >= 128_000


@pytest.mark.parametrize(
    ("kind", "model", "cap"),
    [
        ("openai", "gpt-5", 128_000),
        ("openai", "gpt-5-2025-08-07", 128_000),
        ("openai", "gpt-5-pro", 272_000),
        ("openai", "o3", 100_000),
        ("openai", "gpt-4o-mini", 16_384),
        ("gemini", "gemini-2.5-pro", 65_536),
        ("gemini", "models/gemini-2.5-flash", 65_536),
        ("anthropic", "claude-opus-4-6", 128_000),
        ("anthropic", "claude-sonnet-4-5-20250929", 64_000),
        ("openai", "text-embedding-3-small", None),
        ("openai", "no-such-model", None),
    ],
)
def test_the_catalogue_lists_output_caps(kind: str, model: str, cap: int | None) -> None:
    assert PriceBook().output_cap(kind, model) == cap


def test_a_price_from_the_config_keeps_the_listed_cap_unless_it_names_its_own() -> None:
    book = PriceBook(
        overrides={
            "up/gpt-5": ModelPrice(input=Decimal(1), output=Decimal(2)),
            "up/gpt-4o": ModelPrice(input=Decimal(1), output=Decimal(2), max_output_tokens=999),
            "up/mine": ModelPrice(input=Decimal(1), output=Decimal(2), max_output_tokens=777),
        }
    )
    assert book.output_cap("openai", "gpt-5", provider_name="up") == 128_000
    assert book.output_cap("openai", "gpt-4o", provider_name="up") == 999
    assert book.output_cap("openai", "mine", provider_name="up") == 777


def test_periods_are_utc_days_months_and_all_time() -> None:
    now = datetime(2025, 12, 31, 23, 59, 30, tzinfo=UTC).timestamp()
    day, month, total = (period_of(name, now) for name in ("usd_per_day", "usd_per_month", "usd_total"))
    assert (day.label, day.end) == ("2025-12-31", datetime(2026, 1, 1, tzinfo=UTC))
    assert (month.label, month.start, month.end) == (
        "2025-12",
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert day.left(now) == 30 and day.ttl(now) == 30 + 86400
    assert total.label == "total" and total.endless and total.left(now) == 86400
    assert period_of("usd_per_month", datetime(2025, 2, 10, tzinfo=UTC).timestamp()).end == datetime(
        2025, 3, 1, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.02, "20ms"), (1, "1s"), (1.5, "1.5s"), (6.0004, "6s"), (360, "6m0s"), (3725.25, "1h2m5.25s")],
)
def test_durations_are_written_as_openai_does(seconds: float, text: str) -> None:
    assert _duration(seconds) == text


def test_usd_amounts_in_messages() -> None:
    assert [_usd(Decimal(v)) for v in ("5", "0.5", "0.005", "100.10")] == ["5.00", "0.50", "0.005", "100.10"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relaygate.yaml"
    path.write_text(text)
    return path


BASE = "providers:\n  up: {kind: openai, base_url: 'http://x/v1'}\n"


def test_the_issue_config_and_every_place_of_limits_load(tmp_path: Path) -> None:
    text = BASE + (
        "projects:\n"
        "  - id: proj-a\n"
        "    keys: ['${PROJ_A_KEY}']\n"
        "    limits:\n"
        "      {requests_per_minute: 600, tokens_per_minute: 200000, usd_per_day: 5, usd_per_month: 100,\n"
        "       usd_total: 1000, max_output_tokens: 8192,\n"
        f"       keys: {{default: {{requests_per_minute: 100}}, '{hash_key('k-1')}': {{usd_per_day: 1}}}},\n"
        "       users: {default: {usd_per_day: 0.5}, u-vip: {usd_per_day: 5}},\n"
        "       models: {up/gpt-4o: {tokens_per_minute: 50000, max_output_tokens: 16384}}}\n"
        "counters: redis://127.0.0.1:6379/0\n"
    )
    settings = load_settings(write(tmp_path, text.replace("${PROJ_A_KEY}", "k-1")))
    limits = settings.projects[0].limits
    assert limits is not None and limits.usd_per_day == Decimal(5) and limits.requests_per_minute == 600
    assert set(limits.keys) == {"default", key_id(key_digest("k-1"))}  # the sha256 line became the key's id
    assert limits.users["u-vip"].usd_per_day == Decimal(5)
    assert limits.models["up/gpt-4o"].max_output_tokens == 16384
    assert settings.counters == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("projects: [{id: p, limits: {requests_per_minute: 0}}]", "requests_per_minute: Input should be greater"),
        ("projects: [{id: p, limits: {usd_per_day: -1}}]", "usd_per_day: Input should be greater than or equal"),
        ("projects: [{id: p, limits: {usd_per_week: 1}}]", "limits.usd_per_week: unknown key"),
        ("projects: [{id: p, limits: {keys: {bob: {}}}}]", "name a key by its id"),
        ("projects: [{id: p, keys: [k], limits: {keys: {key_000000000000: {}}}}]", "not one of the keys of project"),
        ("projects: [{id: p, limits: {users: {u: {max_output_tokens: 5}}}}]", "users.u.max_output_tokens: unknown"),
        ("projects: [{id: p, limits: {models: {gpt-4o: {}}}}]", "name a model as provider/model"),
        ("projects: [{id: p, limits: {models: {nope/m: {}}}}]", "projects.p.limits.models: no provider 'nope'"),
        ("database: null\nprojects: [{id: p, limits: {users: {u: {usd_total: 1}}}}]", "USD budgets need the ledger"),
        ("counters: memcached://x", "counters must be redis://"),
    ],
)
def test_bad_limits_are_config_errors_that_name_the_place(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, BASE + text))
    assert expected in str(raised.value)


def test_rates_alone_need_no_database(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            BASE + "database: null\nprojects: [{id: p, limits: {models: {default: {requests_per_minute: 5}}}}]",
        )
    )
    assert settings.projects[0].limits is not None


def test_serve_warns_when_workers_would_each_count_limits_alone(tmp_path: Path) -> None:
    limited = load_settings(write(tmp_path, BASE + "projects: [{id: p, limits: {requests_per_minute: 5}}]"))
    assert "each of the 2 workers" in (shared_limits_warning(limited, 2) or "")
    assert shared_limits_warning(limited, 1) is None
    shared = limited.model_copy(update={"counters": "redis://127.0.0.1:6379/0"})
    assert shared_limits_warning(shared, 2) is None


def test_the_docs_example_of_limits_loads(tmp_path: Path) -> None:
    guide = (Path(__file__).parent.parent / "docs" / "guides" / "limits.md").read_text(encoding="utf-8")
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = write(tmp_path, example)
    settings = load_settings(path, environ={"PROJ_A_KEY": "k-a", "UPSTREAM_KEY": "sk-x"})
    limits = settings.projects[0].limits
    assert limits is not None and set(limits.keys) == {"default", "key_3f9a0c1b2d4e"}
    assert limits.models["upstream/gpt-4o"].max_output_tokens == 16384
