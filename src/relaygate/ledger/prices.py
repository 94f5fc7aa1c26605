"""Prices between their two forms: the pricing package's :class:`ModelPrice` and the store's columns.

The store keeps a price as plain numbers (USD per 1M tokens, and per image keyed ``quality/size``), so it
needs nothing of the pricing package; these two functions are the only place the forms meet.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import ValidationError

from relaygate.image_sizes import parse_size
from relaygate.pricing import ImagePrices, ModelPrice
from relaygate.store import ModelPrices

__all__ = ["model_price", "stored_prices"]


def stored_prices(price: ModelPrice) -> ModelPrices:
    per_image = None
    if price.images is not None:
        per_image = {
            f"{quality}/{size}": float(usd)
            for quality, sizes in price.images.prices.items()
            for size, usd in sizes.items()
        }
    return ModelPrices(
        input=_float(price.input),
        output=_float(price.output),
        cached_input=_float(price.cached_input),
        cache_write=_float(price.cache_write),
        per_image=per_image,
        mp_price=_float(price.mp_price),
    )


def model_price(prices: ModelPrices) -> ModelPrice | None:
    """The price the store holds, or ``None`` when it holds nothing usable (no input price, no image price).

    Per-image prices are keyed ``quality/size`` (``hd/1024x1792``), a size alone (``1024x1024``: any
    quality), a quality alone (``hd``: any size) or ``*``."""
    try:
        images = None
        if prices.per_image:
            table: dict[str, dict[str, Decimal]] = {}
            for key, usd in prices.per_image.items():
                quality, _, size = _quality_and_size(key)
                table.setdefault(quality, {})[size] = _decimal(usd)
            # The dearest option prices a request that leaves quality and size to the model.
            options = [(quality, size) for quality, sizes in table.items() for size in sizes]
            quality, size = max(options, key=lambda option: table[option[0]][option[1]])
            images = ImagePrices(prices=table, default_quality=quality, default_size=size)
        return ModelPrice(
            input=_decimal_or_none(prices.input),
            output=_decimal_or_none(prices.output),
            cached_input=_decimal_or_none(prices.cached_input),
            cache_write=_decimal_or_none(prices.cache_write),
            images=images,
            mp_price=_decimal_or_none(prices.mp_price),
        )
    except ValidationError:
        return None


def _quality_and_size(key: str) -> tuple[str, str, str]:
    quality, slash, size = key.rpartition("/")
    if slash:
        return quality or "*", slash, size
    if key == "*" or parse_size(key) is not None:
        return "*", "/", key
    return key, "/", "*"


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _decimal(value: float) -> Decimal:
    # Through str, so 1.23 stays 1.23 rather than its binary neighbour.
    return Decimal(str(value))


def _decimal_or_none(value: float | None) -> Decimal | None:
    return None if value is None else _decimal(value)
