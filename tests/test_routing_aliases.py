"""``model_aliases``: names clients send (Claude Code's bare, dated Claude names) routed as other names."""

from __future__ import annotations

import httpx
import pytest

from relaygate import Gateway
from relaygate.errors import ModelNotFoundError
from relaygate.routing import ModelRouter
from relaygate.routing.aliases import Aliases
from relaygate.settings import ProviderSettings, Settings, VirtualModelSettings
from tests.conftest import KEY_A, make_settings
from tests.fakes.openai_server import FakeOpenAI

ALIASES = {
    "claude-sonnet-4-5": "upstream/gpt-4o",
    "claude-haiku*": "upstream/gpt-4o-mini",
    "claude-*": "smart",
    "*": "upstream/fallback",
}


def test_lookup_order_exact_then_undated_then_the_longest_pattern() -> None:
    aliases = Aliases(ALIASES)
    assert aliases.lookup("claude-sonnet-4-5") == "upstream/gpt-4o"
    assert aliases.lookup("claude-sonnet-4-5-20250929") == "upstream/gpt-4o"
    assert aliases.lookup("claude-sonnet-4-5@20250929") == "upstream/gpt-4o"
    assert aliases.lookup("claude-haiku-4-5-20251001") == "upstream/gpt-4o-mini"
    assert aliases.lookup("claude-opus-4-1") == "smart"
    assert aliases.lookup("gpt-4o") == "upstream/fallback"
    assert aliases.lookup("gpt-4o", patterns=False) is None
    assert not Aliases({}) and Aliases({}).lookup("x") is None


def router(**settings: object) -> ModelRouter:
    gateway = Gateway(
        Settings(
            providers={"upstream": ProviderSettings(kind="openai", base_url="http://127.0.0.1:9/v1")},
            models={
                "smart": VirtualModelSettings(targets=[{"model": "upstream/smart-1"}, {"model": "upstream/smart-2"}])
            },
            database=None,
            **settings,
        )
    )
    return gateway.router


def test_the_router_routes_aliases_and_keeps_the_name_asked_for() -> None:
    routes = router(model_aliases=ALIASES)
    (target,) = routes.plan("claude-sonnet-4-5-20250929", {}).targets
    assert (target.key, target.route.requested) == ("upstream/gpt-4o", "claude-sonnet-4-5-20250929")
    virtual = routes.plan("claude-opus-4-1", {}).targets
    assert [t.key for t in virtual] == ["upstream/smart-1", "upstream/smart-2"]
    assert {t.route.requested for t in virtual} == {"claude-opus-4-1"}
    assert [t.key for t in routes.reachable("claude-opus-4-1", {})] == ["upstream/smart-1", "upstream/smart-2"]


def test_patterns_never_hide_a_model_the_router_knows() -> None:
    routes = router(model_aliases=ALIASES)
    assert routes.plan("upstream/gpt-4o", {}).targets[0].key == "upstream/gpt-4o"
    assert routes.plan("smart", {}).targets[0].route.requested == "smart"
    assert routes.plan("router/smart", {}).targets[0].key == "upstream/smart-1"
    # A bare name no provider takes: the catch-all pattern.
    assert routes.plan("gpt-4o", {}).targets[0].key == "upstream/fallback"


def test_without_an_alias_a_bare_name_says_how_to_map_it() -> None:
    with pytest.raises(ModelNotFoundError) as missing:
        router().plan("claude-sonnet-4-5", {})
    assert "model_aliases" in missing.value.message


@pytest.mark.parametrize(
    ("aliases", "problem"),
    [
        ({"a": "nowhere/model"}, "model_aliases.a: unknown provider 'nowhere'"),
        ({"a": "bare"}, "model_aliases.a: 'bare' is not provider/model"),
        ({"a*b": "upstream/x"}, "holds '*' only at its end"),
        ({"a": "router/missing"}, "unknown provider 'router'"),
    ],
)
def test_aliases_are_checked_when_the_config_loads(aliases: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match="model_aliases") as refused:
        router(model_aliases=aliases)
    assert problem in str(refused.value)


def test_aliases_may_name_virtual_models_and_default_provider_names() -> None:
    routes = router(model_aliases={"a": "smart", "b": "router/smart", "c": "gpt-4o"}, default_provider="upstream")
    assert routes.plan("b", {}).targets[0].key == "upstream/smart-1"
    assert routes.plan("c", {}).targets[0].key == "upstream/gpt-4o"


@pytest.mark.anyio
async def test_aliases_route_chat_calls_and_are_listed(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    gateway = Gateway(
        make_settings(upstream_url, model_aliases={"fast": "upstream/gpt-4o-mini", "claude-*": "upstream/x"})
    )
    transport = httpx.ASGITransport(app=gateway.app)
    headers = {"authorization": f"Bearer {KEY_A}"}
    async with gateway.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://g", headers=headers) as c:
        response = await c.post(
            "/v1/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "x"}]}
        )
        listed = await c.get("/v1/models")
    assert response.status_code == 200
    assert fake_upstream.models_seen() == ["gpt-4o-mini"]
    entries = {entry["id"]: entry for entry in listed.json()["data"]}
    assert entries["fast"]["alias_of"] == "upstream/gpt-4o-mini"
    assert "claude-*" not in entries, "patterns name no model"
