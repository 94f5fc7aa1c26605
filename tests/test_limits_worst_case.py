"""What a limited call reserves: the worst case of everything it may reach and everything it may cost.

The model's output cap from the catalogue, Anthropic's tool prompt, attachments, virtual models (every target
the call may be routed to), registered model names, and the guards' own model calls; then what a call that
ends without usage settles to. Both counter backends, as in ``test_limits.py``, whose prices these share:
``upstream/priced`` costs $100 per 1M output tokens and nothing for input.
"""

from __future__ import annotations

from typing import Any

import pytest

from relaygate import Gateway, Settings
from relaygate.context import RequestContext
from relaygate.limits.config import ProjectLimits
from relaygate.limits.estimate import ANTHROPIC_TOOLS_TOKENS, estimate
from relaygate.settings import BreakerSettings, ProjectSettings, ProviderSettings, RetrySettings
from tests.conftest import KEY_A, UPSTREAM_KEY
from tests.fakes.openai_server import FakeOpenAI
from tests.test_limits import PRICES, T, client, limiter, settings

pytestmark = pytest.mark.anyio


def gateway_with(upstream_url: str, counters: str | None, limits: dict[str, Any], **extra: Any) -> Gateway:
    providers = {
        "upstream": ProviderSettings(kind="openai", base_url=upstream_url, api_key=UPSTREAM_KEY),
        "claude": ProviderSettings(kind="anthropic", base_url="http://127.0.0.1:1/v1", api_key="k"),
        **extra.pop("providers", {}),
    }
    return Gateway(
        Settings(
            providers=providers,
            projects=[ProjectSettings(id="proj-a", keys=[KEY_A], limits=ProjectLimits.model_validate(limits))],
            database="sqlite:///:memory:",
            counters=counters,
            prices={**PRICES, **extra.pop("prices", {})},
            retry=RetrySettings(max_attempts=1),
            breaker=BreakerSettings(enabled=False),
            **extra,
        )
    )


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
    assert with_tools.estimate.prompt_tokens == (
        estimate("chat", {**body, "tools": tools}, 1).prompt_tokens + ANTHROPIC_TOOLS_TOKENS
    )
    assert plain.estimate.prompt_tokens == estimate("chat", body, 1).prompt_tokens
