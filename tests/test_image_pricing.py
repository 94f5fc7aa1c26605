"""Image calls priced as seeds 002 and 003 name it: per image by quality and size (``type_prices``), per
megapixel (``mp_price``), per image token (gpt-image-1); set in ``/admin/models`` and custom prices; and
reserved by the limits at their worst (``n`` images at the size asked for).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from relaygate import Gateway
from relaygate.context import Usage
from relaygate.limits.estimate import images_cost
from relaygate.pricing import ImagePrices, ModelPrice, PriceBook, image_call_cost, image_cost
from relaygate.settings import Settings

pytestmark = pytest.mark.anyio

ADMIN_KEY = "admin-key-of-the-image-pricing-tests"
TABLE = ImagePrices(
    prices={"standard": {"1024x1024": Decimal("0.04")}, "hd": {"1024x1024": Decimal("0.08")}},
    default_quality="hd",
    default_size="1024x1024",
)


def test_a_call_is_priced_by_its_image_tokens_when_the_provider_counts_them() -> None:
    gpt_image_1 = PriceBook().price("openai", "gpt-image-1")
    usage = Usage(prompt_tokens=373, completion_tokens=1056, input_image_tokens=323)
    # 50 text tokens at $5, 323 image tokens read at $10 and 1056 image tokens written at $40, per 1M.
    assert image_call_cost(gpt_image_1, usage, 1, "1024x1024", "medium") == pytest.approx(
        (50 * 5 + 323 * 10 + 1056 * 40) / 1e6
    )
    # Without usage: OpenAI's per-image table at the size and quality of the answer.
    assert image_call_cost(gpt_image_1, None, 2, "1024x1024", "medium") == pytest.approx(2 * 0.042)


def test_gemini_image_output_tokens_cost_the_image_rate_and_its_text_the_text_rate() -> None:
    flash_image = PriceBook().price("gemini", "gemini-2.5-flash-image")
    usage = Usage(prompt_tokens=9, completion_tokens=1300, output_image_tokens=1290)
    assert image_call_cost(flash_image, usage, 1) == pytest.approx((9 * 0.30 + 1290 * 30 + 10 * 2.50) / 1e6)


def test_per_image_then_per_megapixel() -> None:
    both = ModelPrice(images=TABLE, mp_price=Decimal("0.01"))
    assert image_cost(both, 2, "1024x1024", "hd") == pytest.approx(0.16), "the table where it has the size"
    assert image_cost(both, 2, "2048x1024", "hd") == pytest.approx(2 * 0.01 * 2), "else by the megapixel"
    per_mp = ModelPrice(mp_price=Decimal("0.0027"))
    assert image_cost(per_mp, 1, "1024x1024") == pytest.approx(0.0027)
    assert image_cost(per_mp, 3, "512x512") == pytest.approx(3 * 0.0027 / 4)
    assert image_cost(per_mp, 1) == pytest.approx(0.0027), "1024x1024 when the request names no size"
    assert image_cost(ModelPrice(input=Decimal(1)), 1, "1024x1024") is None


def test_the_limits_reserve_n_images_at_the_size_asked_for() -> None:
    per_mp = ModelPrice(mp_price=Decimal("0.01"))
    body = {"prompt": "x", "width": 2048, "height": 2048, "n": 3}
    assert images_cost(body, 3, per_mp) == 3 * 4 * 10_000_000  # 4 MP at 1 cent, in nano-dollars
    gpt_image_1 = PriceBook().price("openai", "gpt-image-1")
    assert images_cost({"size": "1024x1024", "quality": "low"}, 2, gpt_image_1) == 2 * 11_000_000
    assert images_cost({"width": 1536, "height": 1024}, 1, gpt_image_1) == 250_000_000, "the dearest quality"


def test_the_catalogue_prices_the_shipped_image_models() -> None:
    book = PriceBook()
    for kind, model in [("openai", "gpt-image-1"), ("openai", "dall-e-3"), ("gemini", "gemini-2.5-flash-image")]:
        price = book.price(kind, model)
        assert price is not None and price.prices_images
    schnell = book.price("openai", "black-forest-labs/FLUX.1-schnell", provider_name="together")
    assert schnell is not None and schnell.mp_price == Decimal("0.0027")
    assert book.price("openai", "black-forest-labs/FLUX.1-schnell") is None, "only on the provider named together"


# --- /admin/models and custom prices -----------------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(Settings(database="sqlite:///:memory:", admin_key=ADMIN_KEY))
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as http:
            yield http


def registered(name: str, **prices: Any) -> dict[str, Any]:
    return {
        "model_name": name,
        "description": "an image model",
        "provider_info_id": "mock",
        "project_id": "default",
        "model_type": "image_generation",
        "owner_name": "us",
        "priority": 0,
        "model_name_in_provider": "image",
        **prices,
    }


async def test_admin_models_keeps_mp_price_and_type_prices_and_calls_are_priced_by_them(
    client: httpx.AsyncClient,
) -> None:
    admin = {"x-admin-key": ADMIN_KEY}
    created = await client.post("/admin/models", json=registered("pic", mp_price=0.04), headers=admin)
    assert created.status_code == 200, created.text
    assert created.json()["mp_price"] == 0.04 and created.json()["type_prices"] is None
    answer = await client.post(
        "/v1/images", json={"model": "mock:pic", "prompt": "x", "width": 2048, "height": 1024, "n": 2}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["cost"] == pytest.approx(0.04 * 2 * 2), "2 MP each, two images"

    table = {"1024x1024": 0.02, "hd/1792x1024": 0.08}
    created = await client.post("/admin/models", json=registered("pic", type_prices=table), headers=admin)
    assert created.json()["type_prices"] == table and created.json()["mp_price"] is None
    listed = (await client.get("/admin/models", headers=admin)).json()["data"]
    assert listed[0]["type_prices"] == table
    body = {"model": "mock/pic", "prompt": "x", "width": 1792, "height": 1024, "quality": "hd"}
    assert (await client.post("/v1/images", json=body)).json()["usage"]["cost"] == pytest.approx(0.08)
    generations = await client.post(
        "/v1/images/generations", json={"model": "mock/pic", "prompt": "x", "size": "1024x1024"}
    )
    # The canonical endpoint is priced alike (the mock reports no usage: the cost is in the header).
    assert float(generations.headers["x-cost-usd"]) == pytest.approx(0.02)


async def test_custom_prices_may_price_images(client: httpx.AsyncClient) -> None:
    admin = {"x-admin-key": ADMIN_KEY}
    prices = {"mock/image": {"type_prices": {"512x512": 0.01}, "mp_price": 0.5}}
    answer = await client.post("/projects/default/custom_prices", json=prices, headers=admin)
    assert answer.status_code == 200, answer.text
    small = await client.post(
        "/v1/images", json={"model": "mock:image", "prompt": "x", "width": 512, "height": 512, "n": 3}
    )
    assert small.json()["usage"]["cost"] == pytest.approx(0.03)
    large = await client.post("/v1/images", json={"model": "mock:image", "prompt": "x", "width": 1024, "height": 2048})
    assert large.json()["usage"]["cost"] == pytest.approx(1.0)
    shown = (await client.get("/projects/default/custom_prices", headers=admin)).json()["prices"]["mock/image"]
    assert shown["mp_price"] == 0.5 and shown["image_prices"] == {"*": {"512x512": 0.01}}
    refused = await client.post("/projects/default/custom_prices", json={"mock/x": {}}, headers=admin)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "mock/x.per_input_token"
