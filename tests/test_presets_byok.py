"""Provider presets (a provider usable with only its key; a config entry overriding any part) and the caller's
own key: the keyed view of a provider, a preset serving a request that brings its key, budgets counting or
ignoring such calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from relaygate.context import CallerKey, RequestContext
from relaygate.errors import InvalidRequestError, ModelNotFoundError
from relaygate.limits.config import ProjectLimits
from relaygate.pricing import ModelPrice
from relaygate.providers import build_provider, build_providers
from relaygate.routing import ModelRouter
from relaygate.settings import (
    PRESETS,
    Preset,
    ProjectSettings,
    ProviderSettings,
    Settings,
    known_provider,
    load_settings,
)
from tests.fakes.images_server import FakeImages
from tests.servers import serve_in_thread

pytestmark = pytest.mark.anyio

CALLER = "caller-own-key-for-preset-tests-0123"
CONFIGURED = "configured-key-for-preset-tests-4567"
PROJECT_KEY = "project-key-of-the-preset-tests-89ab"


# --- presets ---------------------------------------------------------------------------------------------


def test_the_presets_named_in_the_issue_are_built_in() -> None:
    names = {
        "openai",
        "anthropic",
        "gemini",
        "together",
        "openrouter",
        "groq",
        "mistral",
        "deepseek",
        "xai",
        "fireworks",
    }
    assert names <= set(PRESETS)
    for preset in PRESETS.values():
        assert preset.base_url.startswith("https://") and preset.key_variables
    assert PRESETS["together"].images_api == "together" and PRESETS["openrouter"].images_api == "chat"


def test_a_preset_needs_only_its_key_in_the_environment() -> None:
    settings = load_settings(environ={"TOGETHER_API_KEY": "tg-key", "GOOGLE_API_KEY": "AIza-google-key"})
    together = settings.providers["together"]
    assert (together.kind, together.base_url, together.images_api) == (
        "openai",
        "https://api.together.xyz/v1",
        "together",
    )
    assert together.api_key is not None and together.api_key.get_secret_value() == "tg-key"
    gemini = settings.providers["gemini"]
    assert gemini.kind == "gemini" and gemini.api_key is not None
    assert gemini.api_key.get_secret_value() == "AIza-google-key"
    assert "groq" not in settings.providers, "a preset without its key is not added"


def test_a_config_entry_overrides_any_part_of_a_preset(tmp_path: Any) -> None:
    config = tmp_path / "relaygate.yaml"
    config.write_text(
        "providers:\n"
        "  together: {base_url: 'http://127.0.0.1:9/v1', models: [flux]}\n"
        "  openrouter: {kind: openai, base_url: 'http://127.0.0.1:8/v1', api_key: own, images_api: openai}\n"
    )
    settings = load_settings(config, environ={"TOGETHER_API_KEY": "tg-env-key", "OPENROUTER_API_KEY": "or-env"})
    together = settings.providers["together"]
    assert (together.kind, together.base_url, together.models) == ("openai", "http://127.0.0.1:9/v1", ["flux"])
    assert together.images_api == "together", "what the entry leaves out comes from the preset"
    assert together.api_key is not None and together.api_key.get_secret_value() == "tg-env-key"
    openrouter = settings.providers["openrouter"]
    assert openrouter.images_api == "openai" and openrouter.base_url == "http://127.0.0.1:8/v1"
    assert openrouter.api_key is not None and openrouter.api_key.get_secret_value() == "own"


def test_known_provider_is_one_answer_for_configured_providers_the_mock_and_presets() -> None:
    configured = {"upstream", "gemini"}
    assert known_provider("upstream", configured)
    assert known_provider("mock", configured)
    assert known_provider("together", configured) and known_provider("google", configured)
    assert not known_provider("nowhere", configured)


# --- routing -----------------------------------------------------------------------------------------------


def router(**providers: ProviderSettings) -> ModelRouter:
    built = build_providers(Settings(providers=providers, database=None))
    return ModelRouter(built, presets=lambda preset: build_provider(preset.name, _preset_settings(preset)))


def _preset_settings(preset: Preset) -> ProviderSettings:
    return ProviderSettings(kind=preset.kind, base_url=preset.base_url, images_api=preset.images_api)


def test_an_alias_names_the_configured_provider() -> None:
    routes = router(gemini=ProviderSettings(kind="gemini", api_key="k" * 12))
    route = routes.resolve("google/gemini-2.5-flash-image")
    assert route.provider.name == "gemini" and route.model == "gemini-2.5-flash-image"


def test_an_unconfigured_preset_serves_only_requests_with_their_own_key() -> None:
    routes = router()
    with pytest.raises(InvalidRequestError) as refused:
        routes.resolve("together/black-forest-labs/FLUX.1-schnell")
    assert refused.value.code == "provider_not_configured" and "TOGETHER_API_KEY" in refused.value.message
    route = routes.resolve("together/black-forest-labs/FLUX.1-schnell", caller_key=True)
    assert route.provider.base_url == "https://api.together.xyz/v1" and route.provider.kind == "openai"
    assert route.provider.settings.api_key is None, "the preset has no key of its own"
    again = routes.resolve("together/another", caller_key=True)
    assert again.provider is route.provider, "made once"
    with pytest.raises(ModelNotFoundError):
        routes.resolve("nowhere/model", caller_key=True)


def test_a_keyed_provider_carries_only_the_callers_credential() -> None:
    headers = {"authorization": "Bearer configured-in-headers", "api-key": "azure-style", "x-trace": "kept"}
    providers = build_providers(
        Settings(
            providers={
                "openai": ProviderSettings(kind="openai", base_url="http://x/v1", api_key=CONFIGURED, headers=headers),
                "claude": ProviderSettings(kind="anthropic", api_key=CONFIGURED),
                "gemini": ProviderSettings(kind="gemini", api_key=CONFIGURED),
            },
            database=None,
        )
    )
    openai = providers["openai"].keyed(CALLER)
    assert openai.headers == {
        "content-type": "application/json",
        "x-trace": "kept",
        "authorization": f"Bearer {CALLER}",
    }
    assert openai.client is providers["openai"].client, "the same pool"
    assert providers["openai"].headers["authorization"] == "Bearer configured-in-headers", "the provider is unchanged"
    claude = providers["claude"].keyed(CALLER).headers
    assert claude["x-api-key"] == CALLER and claude["anthropic-version"] and CONFIGURED not in str(claude)
    assert providers["gemini"].keyed(CALLER).headers["x-goog-api-key"] == CALLER


def test_the_callers_key_is_shown_by_its_fingerprint_only() -> None:
    key = CallerKey(CALLER)
    assert CALLER not in repr(key) and CALLER not in repr(RequestContext(caller_key=key))
    assert len(key.fingerprint) == 8 and int(key.fingerprint, 16) >= 0


# --- through the gateway -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_together() -> Iterator[tuple[FakeImages, str]]:
    fake = FakeImages("together", keys={CALLER, CONFIGURED})
    with serve_in_thread(fake) as url:
        yield fake, url


def gateway(limits: dict[str, Any] | None = None, **providers: ProviderSettings) -> Gateway:
    project = ProjectSettings(
        id="studio",
        keys=[PROJECT_KEY],
        byok=True,
        limits=ProjectLimits.model_validate(limits) if limits is not None else None,
    )
    price = ModelPrice(mp_price=Decimal("0.5"))
    return Gateway(
        Settings(
            providers=providers,
            projects=[project],
            database="sqlite:///:memory:",
            prices={"together/flux": price, "mine/flux": price},
        )
    )


async def post(gw: Gateway, body: dict[str, Any], **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=gw.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as client:
        sent = {"authorization": f"Bearer {PROJECT_KEY}", **{k.replace("_", "-"): v for k, v in headers.items()}}
        return await client.post("/v1/images", json=body, headers=sent)


async def test_a_preset_nobody_configured_serves_a_request_with_the_callers_key(
    fake_together: tuple[FakeImages, str],
) -> None:
    fake, url = fake_together
    gw = gateway()
    # The preset's own base URL is Together's; the test points the preset at the fake instead.
    gw.router.make_preset = lambda preset: build_provider(
        preset.name, _preset_settings(preset).model_copy(update={"base_url": url + "/v1"})
    )
    async with gw.lifespan():
        without = await post(gw, {"model": "together:flux", "prompt": "x"})
        assert without.status_code == 400 and without.json()["error"]["code"] == "provider_not_configured"
        own = await post(gw, {"model": "together:flux", "prompt": "x", "width": 640, "height": 480}, lb_llm_key=CALLER)
    assert own.status_code == 200, own.text
    assert own.json()["provider"] == "together"
    seen = fake.last("/images/generations")
    assert seen.headers["authorization"] == f"Bearer {CALLER}"
    assert (seen.body["width"], seen.body["height"]) == (640, 480)
    assert own.json()["usage"]["cost"] == pytest.approx(0.5 * 640 * 480 / 1024**2)


@pytest.mark.parametrize(("byok_calls", "status"), [("ignore", 200), ("count", 429)])
async def test_budgets_count_or_ignore_calls_paid_with_the_callers_key(
    fake_together: tuple[FakeImages, str], byok_calls: str, status: int
) -> None:
    _, url = fake_together
    mine = ProviderSettings(kind="openai", base_url=url + "/v1", api_key=CONFIGURED, images_api="together")
    # A budget of 10 cents; a 1024x1024 image costs 50.
    gw = gateway({"usd_per_day": "0.10", "byok_calls": byok_calls}, mine=mine)
    async with gw.lifespan():
        own = await post(gw, {"model": "mine/flux", "prompt": "x"}, x_provider_key=CALLER)
        theirs = await post(gw, {"model": "mine/flux", "prompt": "x"})
    assert own.status_code == status, own.text
    assert theirs.status_code == 429, "the gateway's own key is held against the budget either way"
