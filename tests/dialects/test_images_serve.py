"""Langbase's Images API (``POST /v1/images``) through ``relaygate serve``, against fake OpenAI-images,
Gemini-image and Together servers on 127.0.0.1: the seed's answer shape field by field, plain and
image-to-image; width and height as each provider's size; the caller's own key (``LB-LLM-Key``) as the
providers' credential for a project with ``byok: true``, the configured key otherwise, a 403 for a project
without; the calls priced and in the usage and analytics.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.gemini_server import API_KEY as GEMINI_KEY
from tests.fakes.gemini_server import PNG as GEMINI_PNG
from tests.fakes.gemini_server import FakeGemini
from tests.fakes.images_server import PNG, FakeImages
from tests.servers import relaygate_serve, serve_in_thread

OPENAI_KEY = "sk-configured-openai-images-key"
TOGETHER_KEY = "together-configured-key-0123456789"
OPENROUTER_KEY = "sk-or-configured-openrouter-key-0123"
CALLER_OPENAI = "sk-caller-own-openai-key-abcdef012345"
CALLER_TOGETHER = "caller-own-together-key-9876543210"
CALLER_GEMINI = "AIzaCallerOwnGeminiKey0123456789abcdef"
STUDIO_KEY = "rg-studio-project-key-0123456789abcdef"
PLAIN_KEY = "rg-plain-project-key-0123456789abcdef"
ADMIN_KEY = "admin-key-of-the-images-tests-0123"

# The image an image-to-image request starts from.
SOURCE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRsource-image"
SOURCE_URL = "data:image/png;base64," + base64.b64encode(SOURCE).decode()

CONFIG = """
database: sqlite:///{db}
admin_key: {admin_key}
providers:
  openai: {{kind: openai, base_url: "{openai}/v1", api_key: "{openai_key}"}}
  gemini: {{kind: gemini, base_url: "{gemini}/v1beta", api_key: "{gemini_key}"}}
  together: {{base_url: "{together}/v1", api_key: "{together_key}"}}
  openrouter: {{base_url: "{openrouter}/v1", api_key: "{openrouter_key}"}}
projects:
  - {{id: studio, keys: ["{studio_key}"], byok: true}}
  - {{id: plain, keys: ["{plain_key}"]}}
"""


class Servers:
    def __init__(
        self, base: str, openai: FakeImages, together: FakeImages, openrouter: FakeImages, gemini: FakeGemini, db: Path
    ) -> None:
        self.base = base
        self.openai = openai
        self.together = together
        self.openrouter = openrouter
        self.gemini = gemini
        self.db = db


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("images")
    openai = FakeImages("openai", keys={OPENAI_KEY, CALLER_OPENAI})
    together = FakeImages("together", keys={TOGETHER_KEY, CALLER_TOGETHER})
    openrouter = FakeImages("chat", keys={OPENROUTER_KEY})
    gemini = FakeGemini(keys={GEMINI_KEY, CALLER_GEMINI})
    with serve_in_thread(openai) as openai_url, serve_in_thread(together) as together_url:
        with serve_in_thread(gemini) as gemini_url, serve_in_thread(openrouter) as openrouter_url:
            config = tmp / "relaygate.yaml"
            config.write_text(
                CONFIG.format(
                    db=tmp / "ledger.db",
                    admin_key=ADMIN_KEY,
                    openai=openai_url,
                    openai_key=OPENAI_KEY,
                    gemini=gemini_url,
                    gemini_key=GEMINI_KEY,
                    together=together_url,
                    together_key=TOGETHER_KEY,
                    openrouter=openrouter_url,
                    openrouter_key=OPENROUTER_KEY,
                    studio_key=STUDIO_KEY,
                    plain_key=PLAIN_KEY,
                )
            )
            with relaygate_serve(["--config", str(config)], cwd=tmp) as base:
                yield Servers(base, openai, together, openrouter, gemini, tmp / "ledger.db")


def images(servers: Servers, body: dict[str, Any], *, key: str = STUDIO_KEY, **headers: str) -> httpx.Response:
    sent = {"authorization": f"Bearer {key}", **{name.replace("_", "-"): value for name, value in headers.items()}}
    return httpx.post(servers.base + "/v1/images", json=body, headers=sent, timeout=30)


def assert_seed_shape(answer: dict[str, Any], *, provider: str, model: str, images: int) -> list[str]:
    """Every field of the seed's ImageGenerationResponse; the images' URLs."""
    assert set(answer) == {"id", "provider", "model", "object", "created", "choices", "usage"}
    assert isinstance(answer["id"], str) and answer["id"].startswith("chatcmpl-")
    assert answer["provider"] == provider
    assert answer["model"] == model
    assert answer["object"] == "chat.completion"
    assert isinstance(answer["created"], int) and answer["created"] > 1_600_000_000
    assert len(answer["choices"]) == images
    urls = []
    for index, choice in enumerate(answer["choices"]):
        assert choice["logprobs"] is None
        assert choice["finish_reason"] == "stop"
        assert choice["native_finish_reason"] == "stop"
        assert choice["index"] == index
        message = choice["message"]
        assert message["role"] == "assistant"
        assert message["content"] is None
        (image,) = message["images"]
        assert image["type"] == "image_url" and image["index"] == index
        url = image["image_url"]["url"]
        assert url.startswith(("http://", "https://", "data:image/"))
        urls.append(url)
    usage = answer["usage"]
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(usage[name], int)
    assert usage["total_tokens"] >= usage["prompt_tokens"] + usage["completion_tokens"] - 0
    assert isinstance(usage["prompt_tokens_details"]["cached_tokens"], int)
    assert isinstance(usage["completion_tokens_details"]["reasoning_tokens"], int)
    assert isinstance(usage["completion_tokens_details"]["image_tokens"], int)
    return urls


# --- OpenAI ----------------------------------------------------------------------------------------------


def test_openai_gpt_image_1_in_the_seed_shape_with_width_and_height_as_its_size(servers: Servers) -> None:
    body = {"model": "openai:gpt-image-1", "prompt": "A futuristic city", "width": 1536, "height": 1024, "steps": 30}
    response = images(servers, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    (url,) = assert_seed_shape(answer, provider="openai", model="gpt-image-1", images=1)
    assert url == "data:image/png;base64," + PNG
    usage = answer["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (50, 1056, 1106)
    assert usage["completion_tokens_details"]["image_tokens"] == 1056
    # Priced by its tokens: 50 text tokens at $5/M and 1056 image tokens at $40/M.
    assert usage["cost"] == pytest.approx(50 * 5e-6 + 1056 * 40e-6)
    seen = servers.openai.last("/images/generations")
    assert seen.body == {"model": "gpt-image-1", "prompt": "A futuristic city", "size": "1536x1024"}
    assert seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"


def test_openai_image_to_image_goes_through_the_edits_endpoint_as_a_form(servers: Servers) -> None:
    body = {"model": "openai:gpt-image-1", "prompt": "Make it blue", "image_url": SOURCE_URL, "n": 2}
    response = images(servers, {**body, "width": 1024, "height": 1024})
    assert response.status_code == 200, response.text
    assert_seed_shape(response.json(), provider="openai", model="gpt-image-1", images=2)
    seen = servers.openai.last("/images/edits")
    assert seen.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert seen.body == {
        "model": "gpt-image-1",
        "prompt": "Make it blue",
        "n": "2",
        "size": "1024x1024",
        "file:image": "image/png",
    }
    assert servers.openai.uploads[-1] == SOURCE
    assert response.json()["usage"]["prompt_tokens"] == 373, "the image read is counted"


def test_dall_e_3_answers_with_urls_and_refuses_a_size_it_cannot_make(servers: Servers) -> None:
    response = images(servers, {"model": "openai/dall-e-3", "prompt": "A lighthouse", "width": 1792, "height": 1024})
    assert response.status_code == 200, response.text
    (url,) = assert_seed_shape(response.json(), provider="openai", model="dall-e-3", images=1)
    assert url == "https://images.example/0.png"
    assert servers.openai.last().body["size"] == "1792x1024"
    before = len(servers.openai.requests)
    refused = images(servers, {"model": "openai:dall-e-3", "prompt": "A lighthouse", "width": 512, "height": 512})
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["param"] == "width" and error["type"] == "invalid_request_error"
    assert "1024x1024, 1792x1024, 1024x1792" in error["message"]
    assert len(servers.openai.requests) == before, "nothing was sent"


# --- Gemini ----------------------------------------------------------------------------------------------


def test_google_image_model_plain_and_image_to_image(servers: Servers) -> None:
    body = {"model": "google:gemini-2.5-flash-image", "prompt": "A fox", "width": 1536, "height": 1024}
    response = images(servers, body)
    assert response.status_code == 200, response.text
    (url,) = assert_seed_shape(response.json(), provider="google", model="gemini-2.5-flash-image", images=1)
    assert url == "data:image/png;base64," + GEMINI_PNG
    seen = servers.gemini.last(":generateContent")
    assert seen.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert seen.body["generationConfig"] == {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "3:2"}}
    assert seen.body["contents"] == [{"role": "user", "parts": [{"text": "A fox"}]}]
    assert seen.headers["x-goog-api-key"] == GEMINI_KEY
    assert response.json()["usage"]["cost"] > 0

    response = images(
        servers, {"model": "google:gemini-2.5-flash-image", "prompt": "Add a hat", "image_url": SOURCE_URL}
    )
    assert response.status_code == 200, response.text
    assert_seed_shape(response.json(), provider="google", model="gemini-2.5-flash-image", images=1)
    parts = servers.gemini.last(":generateContent").body["contents"][0]["parts"]
    assert parts == [
        {"text": "Add a hat"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(SOURCE).decode()}},
    ]


# --- Together --------------------------------------------------------------------------------------------


def test_together_takes_width_height_steps_and_the_image_url_as_they_are(servers: Servers) -> None:
    model = "together:black-forest-labs/FLUX.1-schnell-Free"
    body = {"model": model, "prompt": "A red bicycle", "width": 768, "height": 512, "steps": 4, "n": 2}
    response = images(servers, body)
    assert response.status_code == 200, response.text
    urls = assert_seed_shape(
        response.json(), provider="together", model="black-forest-labs/FLUX.1-schnell-Free", images=2
    )
    assert urls == ["https://api.together.ai/imgproxy/0.png", "https://api.together.ai/imgproxy/1.png"]
    seen = servers.together.last("/images/generations")
    assert seen.body == {
        "model": "black-forest-labs/FLUX.1-schnell-Free",
        "prompt": "A red bicycle",
        "width": 768,
        "height": 512,
        "steps": 4,
        "n": 2,
    }
    assert seen.headers["authorization"] == f"Bearer {TOGETHER_KEY}"
    assert response.json()["usage"]["cost"] == 0, "the free endpoint is priced at nothing"

    remote = "https://example.com/source.png"
    body = {"model": "together/black-forest-labs/FLUX.1-kontext-pro", "prompt": "Night", "image_url": remote}
    response = images(servers, body)
    assert response.status_code == 200, response.text
    assert servers.together.last().body["image_url"] == remote


def test_together_answers_base64_as_data_urls(servers: Servers) -> None:
    body = {"model": "together:black-forest-labs/FLUX.1-schnell", "prompt": "A cat", "response_format": "b64_json"}
    response = images(servers, body)
    assert response.status_code == 200, response.text
    (url,) = assert_seed_shape(response.json(), provider="together", model="black-forest-labs/FLUX.1-schnell", images=1)
    assert url == "data:image/png;base64," + PNG
    assert servers.together.last().body["response_format"] == "base64"
    # Priced per megapixel: FLUX.1 [schnell] at $0.0027 for a 1024x1024 image.
    assert response.json()["usage"]["cost"] == pytest.approx(0.0027)


# --- OpenRouter, and the OpenAI-shaped endpoint ----------------------------------------------------------


def test_openrouter_makes_images_through_chat_completions(servers: Servers) -> None:
    model = "openrouter:google/gemini-2.5-flash-image-preview"
    body = {"model": model, "prompt": "A kite", "width": 1792, "height": 1024, "image_url": SOURCE_URL, "n": 2}
    response = images(servers, body)
    assert response.status_code == 200, response.text
    urls = assert_seed_shape(
        response.json(), provider="openrouter", model="google/gemini-2.5-flash-image-preview", images=2
    )
    assert urls == ["data:image/png;base64," + PNG] * 2
    assert response.json()["usage"]["completion_tokens_details"]["image_tokens"] == 2580
    seen = servers.openrouter.last("/chat/completions")
    assert seen.body == {
        "model": "google/gemini-2.5-flash-image-preview",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "A kite"},
                    {"type": "image_url", "image_url": {"url": SOURCE_URL}},
                ],
            }
        ],
        "modalities": ["image", "text"],
        "n": 2,
        "image_config": {"aspect_ratio": "16:9"},
    }


def test_the_openai_shaped_endpoint_translates_width_height_and_steps_too(servers: Servers) -> None:
    headers = {"authorization": f"Bearer {STUDIO_KEY}", "LB-LLM-Key": CALLER_OPENAI}
    with httpx.Client(base_url=servers.base, headers=headers, timeout=30) as client:
        body = {"model": "openai/gpt-image-1", "prompt": "A boat", "width": 1024, "height": 1536, "steps": 20}
        answer = client.post("/v1/images/generations", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == [{"b64_json": PNG}]
        seen = servers.openai.last("/images/generations")
        assert seen.body == {"model": "gpt-image-1", "prompt": "A boat", "size": "1024x1536"}
        assert seen.headers["authorization"] == f"Bearer {CALLER_OPENAI}"
        body = {"model": "together/black-forest-labs/FLUX.1-schnell", "prompt": "A boat", "size": "1536x1024"}
        # An OpenAI key sent to Together: refused there, and not echoed back.
        refused = client.post("/v1/images/generations", json=body)
        assert refused.status_code == 401 and CALLER_OPENAI not in refused.text
        own = {"authorization": f"Bearer {STUDIO_KEY}"}
        assert (
            httpx.post(servers.base + "/v1/images/generations", json={**body, "steps": 8}, headers=own).status_code
            == 200
        )
        seen = servers.together.last("/images/generations")
        assert (seen.body["width"], seen.body["height"], seen.body["steps"]) == (1536, 1024, 8)
        assert "size" not in seen.body


# --- bring your own key ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["LB-LLM-Key", "X-Provider-Key"])
def test_the_callers_key_is_the_providers_credential_and_without_it_the_configured_one(
    servers: Servers, header: str
) -> None:
    cases: list[tuple[str, FakeImages | FakeGemini, str, str, str | None]] = [
        ("openai:gpt-image-1", servers.openai, "authorization", CALLER_OPENAI, f"Bearer {OPENAI_KEY}"),
        ("together:black-forest-labs/FLUX.1-schnell", servers.together, "authorization", CALLER_TOGETHER, None),
        ("google:gemini-2.5-flash-image", servers.gemini, "x-goog-api-key", CALLER_GEMINI, GEMINI_KEY),
    ]
    for model, fake, name, caller, configured in cases:
        with httpx.Client(base_url=servers.base, timeout=30) as client:
            headers = {"authorization": f"Bearer {STUDIO_KEY}", header: caller}
            own = client.post("/v1/images", json={"model": model, "prompt": "x"}, headers=headers)
            assert own.status_code == 200, own.text
            presented = fake.requests[-1].headers[name]
            assert presented == (caller if name == "x-goog-api-key" else f"Bearer {caller}")
            theirs = client.post(
                "/v1/images", json={"model": model, "prompt": "x"}, headers={"authorization": f"Bearer {STUDIO_KEY}"}
            )
            assert theirs.status_code == 200, theirs.text
            presented = fake.requests[-1].headers[name]
            expected = configured if configured is not None else f"Bearer {TOGETHER_KEY}"
            assert presented == expected
            assert header.lower() not in fake.requests[-2].headers, "the header itself goes nowhere"


def test_a_project_without_byok_gets_a_403_and_the_provider_is_not_called(servers: Servers) -> None:
    before = len(servers.openai.requests)
    response = images(servers, {"model": "openai:gpt-image-1", "prompt": "x"}, key=PLAIN_KEY, LB_LLM_Key=CALLER_OPENAI)
    error = response.json()["error"]
    assert response.status_code == 403
    assert error["code"] == "byok_not_allowed" and error["type"] == "permission_error"
    assert CALLER_OPENAI not in response.text
    assert len(servers.openai.requests) == before
    # The same project without the header is served with the configured key.
    assert images(servers, {"model": "openai:gpt-image-1", "prompt": "x"}, key=PLAIN_KEY).status_code == 200


def test_a_project_without_byok_is_refused_on_chat_completions_too(servers: Servers) -> None:
    headers = {"authorization": f"Bearer {PLAIN_KEY}", "x-provider-key": CALLER_OPENAI}
    refused = httpx.post(
        servers.base + "/v1/chat/completions",
        json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
        headers=headers,
        timeout=30,
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "byok_not_allowed"


def test_the_ledger_records_the_callers_key_by_fingerprint_and_prices_every_image_call(servers: Servers) -> None:
    images(servers, {"model": "openai:gpt-image-1", "prompt": "fingerprinted"}, LB_LLM_Key=CALLER_OPENAI)
    headers = {"authorization": f"Bearer {STUDIO_KEY}"}
    with httpx.Client(base_url=servers.base, headers=headers, timeout=30) as client:
        usage = client.post("/usage/models", json={"period": "last_day"}).json()
        summary = client.post("/analytics/summary", json={"period": "last_day", "groupBy": ["model"]}).json()
    by_model = {row["model"]: row for row in usage["models"]}
    assert by_model["openai/gpt-image-1"]["requests"] >= 2 and by_model["openai/gpt-image-1"]["total_cost"] > 0
    assert by_model["gemini/gemini-2.5-flash-image"]["total_cost"] > 0
    assert "together/black-forest-labs/FLUX.1-schnell" in by_model
    grouped = {row["model"]: row for row in summary["summary"]}
    assert grouped["gpt-image-1"]["total_cost"] > 0
    with sqlite3.connect(servers.db) as db:
        rows = db.execute(
            "SELECT endpoint, caller_key, cost_nanos FROM calls WHERE model = 'gpt-image-1' AND caller_key IS NOT NULL"
        ).fetchall()
    fingerprint = hashlib.sha256(CALLER_OPENAI.encode()).hexdigest()[:8]
    assert rows and all(row[0] == "images" and row[1] == fingerprint and row[2] > 0 for row in rows)


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "openai:gpt-image-1"}, "prompt"),
        ({"prompt": "x"}, "model"),
        ({"model": "openai:gpt-image-1", "prompt": ""}, "prompt"),
        ({"model": "openai:gpt-image-1", "prompt": "x", "width": 1024}, "height"),
        ({"model": "openai:gpt-image-1", "prompt": "x", "width": -5, "height": 10}, "width"),
        ({"model": "openai:gpt-image-1", "prompt": "x", "width": "big", "height": 10}, "width"),
        ({"model": "openai:gpt-image-1", "prompt": "x", "n": 0}, "n"),
        ({"model": "openai:gpt-image-1", "prompt": "x", "steps": 1.5}, "steps"),
        ({"model": "openai:gpt-image-1", "prompt": "x", "image_url": "ftp://x/y.png"}, "image_url"),
        ({"model": "openai:gpt-image-1", "prompt": "x", "stream": True}, "stream"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(servers: Servers, body: dict[str, Any], param: str) -> None:
    response = images(servers, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_unknown_and_unconfigured_providers_say_so(servers: Servers) -> None:
    unknown = images(servers, {"model": "nowhere:some-model", "prompt": "x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    preset = images(servers, {"model": "xai:grok-2-image", "prompt": "x"})
    error = preset.json()["error"]
    assert preset.status_code == 400 and error["code"] == "provider_not_configured"
    assert "XAI_API_KEY" in error["message"] and error["param"] == "model"
