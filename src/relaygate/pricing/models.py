"""The pydantic models of a price: one model's token and image prices, and the ``provider/model`` key.

:class:`ModelPrice` is the one shape used everywhere a price is written down: the shipped catalogue
(``prices.yaml``), the ``prices:`` mapping of the config file, the model registry (``POST /admin/models``)
and per-project custom prices (``POST /projects/{id}/custom_prices``). Amounts are :class:`~decimal.Decimal`
USD so that ``0.075`` stays ``0.075``; JSON output turns them back into numbers.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, field_validator, model_validator

__all__ = ["ImagePrices", "ModelPrice", "PriceEntry", "PriceKey", "PriceSource", "parse_price_key"]

# USD, never negative. JSON (GET /pricing, the admin API) shows numbers rather than pydantic's decimal strings.
Usd = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]

# "provider/model": the provider part is a provider's name in the config or a provider kind (which prices
# the model on every provider of that kind); the model part is the provider's own model name and may hold
# further slashes (openrouter/meta-llama/llama-3.1-8b).
PRICE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}/\S+$"
PriceKey = Annotated[str, StringConstraints(pattern=PRICE_KEY_PATTERN)]
_PRICE_KEY = re.compile(PRICE_KEY_PATTERN)

# Where a resolved price came from, most general first.
PriceSource = Literal["catalogue", "config", "registry", "project"]

# Image quality or size that matches any value asked for.
ANY = "*"
# What OpenAI's Images API accepts to let the model choose; priced as the entry's default.
AUTO = "auto"

_MILLION = Decimal(1_000_000)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImagePrices(_Model):
    """USD per generated image, by quality and then size; ``"*"`` matches any quality or size."""

    # {quality: {size: USD}}; "*" matches any quality or size.
    prices: dict[str, dict[str, Usd]]
    # Used when a request leaves the quality or size out (or says "auto") and the response does not tell.
    default_quality: str = ANY
    # The size priced when the request and the response do not say.
    default_size: str = ANY

    @field_validator("prices")
    @classmethod
    def _lower_case_and_not_empty(cls, prices: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
        if not prices or not all(prices.values()):
            raise ValueError("image prices need at least one quality with at least one size")
        # Requests spell qualities and sizes in lower case (hd, 1024x1024); keep the table in the same case.
        return {
            quality.lower(): {size.lower(): usd for size, usd in sizes.items()} for quality, sizes in prices.items()
        }

    @field_validator("default_quality", "default_size")
    @classmethod
    def _lower_case(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _defaults_have_a_price(self) -> ImagePrices:
        # A default without a price would make every "auto" request unpriceable: refuse it at load time.
        if self.price_for(None, None) is None:
            raise ValueError(
                f"no price for the default quality {self.default_quality!r} and size {self.default_size!r}"
            )
        return self

    def price_for(self, quality: str | None, size: str | None) -> Decimal | None:
        """One image's price, or ``None`` when this model has no price for that quality and size."""
        quality = (quality or AUTO).lower()
        size = (size or AUTO).lower()
        size = self.default_size if size == AUTO else size
        if quality != AUTO:
            # A listed quality does not borrow another quality's sizes.
            sizes = self.prices.get(quality) or self.prices.get(ANY)
            return sizes.get(size, sizes.get(ANY)) if sizes is not None else None
        # Left to the model: the default quality's price for the size, else the one listed for any quality.
        for sizes in (self.prices.get(self.default_quality), self.prices.get(ANY)):
            found = sizes.get(size, sizes.get(ANY)) if sizes is not None else None
            if found is not None:
                return found
        return None


class ModelPrice(_Model):
    """What one model costs in USD: token prices per 1M tokens, image prices per image or per megapixel.

    ``cached_input`` is the price of prompt tokens read from the provider's cache and ``cache_write`` of
    prompt tokens written to it (Anthropic's 5-minute writes, 1.25x input); both fall back to ``input`` when
    absent. ``cache_write_1h`` is Anthropic's 1-hour write price (2x input), listed for ``GET /pricing``:
    usage does not say which TTL a write used, so costs use ``cache_write``.

    ``max_output_tokens`` is the most the model writes in one answer (reasoning included): the limits
    reserve it for a request that sets no ``max_tokens``. It prices nothing.

    An image model is priced by one of (the first that applies to the call, see
    :func:`~relaygate.pricing.cost.image_call_cost`): its image tokens (``image_output`` per 1M generated
    image tokens and ``image_input`` per 1M image tokens read, as gpt-image-1 bills them, when the provider
    reports the usage), ``images`` (per image by quality and size; the admin API's ``type_prices``), or
    ``mp_price`` (USD per megapixel of generated image, 1024 x 1024 pixels being one, as Together bills).
    """

    # USD per 1M prompt tokens.
    input: Usd | None = None
    # USD per 1M answer tokens (reasoning tokens included).
    output: Usd | None = None
    # USD per 1M prompt tokens read from the provider's cache; input when absent.
    cached_input: Usd | None = None
    # USD per 1M prompt tokens written to the provider's cache; input when absent.
    cache_write: Usd | None = None
    # Anthropic's 1-hour cache write, listed in GET /pricing; costs use cache_write.
    cache_write_1h: Usd | None = None
    # USD per generated image, by quality and size.
    images: ImagePrices | None = None
    # USD per megapixel of generated image (1024 x 1024 pixels being one), as Together bills.
    mp_price: Usd | None = None
    # USD per 1M image tokens read (gpt-image-1's input images), when the provider reports them.
    image_input: Usd | None = None
    # USD per 1M generated image tokens, when the provider reports them.
    image_output: Usd | None = None
    # The most the model writes in one answer; the limits reserve it for requests without max_tokens. Prices
    # nothing.
    max_output_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _priced_at_all(self) -> ModelPrice:
        token_prices = (self.output, self.cached_input, self.cache_write, self.cache_write_1h)
        if self.input is None and any(price is not None for price in token_prices):
            raise ValueError("token prices need an input price")
        if self.input is None and self.images is None and self.mp_price is None and self.image_output is None:
            raise ValueError(
                "a price needs input (per 1M tokens), images (per image), mp_price (per megapixel) or "
                "image_output (per 1M image tokens)"
            )
        return self

    @property
    def prices_images(self) -> bool:
        """Whether the price says what a generated image costs (by tokens, image or megapixel)."""
        return self.images is not None or self.mp_price is not None or self.image_output is not None

    @classmethod
    def per_token(cls, input: Decimal | float | str, output: Decimal | float | str | None = None) -> ModelPrice:
        """A price from USD per single token (LangDB's ``input_token_price`` and ``output_token_price``)."""
        # str() first so a float such as 1e-05 becomes Decimal("0.00001"), not its binary approximation.
        return cls(
            input=Decimal(str(input)) * _MILLION,
            output=None if output is None else Decimal(str(output)) * _MILLION,
        )


class PriceEntry(_Model):
    """A price as found: the key that matched, the layer it came from and the price itself."""

    # A provider kind for catalogue entries; a provider's name (or a kind) for the other layers.
    provider: str
    model: str
    source: PriceSource
    price: ModelPrice


def parse_price_key(key: str) -> tuple[str, str]:
    """``"upstream/gpt-4o"`` -> ``("upstream", "gpt-4o")``; :class:`ValueError` when it is not ``provider/model``."""
    if not _PRICE_KEY.match(key):
        raise ValueError(f"price key {key!r} must be provider/model, e.g. openai/gpt-4o")
    provider, model = key.split("/", 1)
    return provider, model
