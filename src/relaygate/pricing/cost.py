"""The cost of a call in USD: token usage times a :class:`ModelPrice`, or generated images at their price.

Arithmetic is exact (:class:`~decimal.Decimal`); the result is rounded once, to a nano-dollar (1e-9 USD),
and returned as a float for ``RequestContext.cost_usd`` and the ledger. A nano-dollar is finer than any
real charge (one token of the cheapest catalogue price, gpt-5-nano's cached input at $0.005 per 1M tokens,
costs 5e-9 USD), and rounding there means a cost is the float nearest a short decimal amount, the same
however it was reached, instead of carrying a long tail from an unusual custom price.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from relaygate.context import Usage
from relaygate.image_sizes import DEFAULT_DIMENSIONS, megapixels, parse_size
from relaygate.pricing.models import ModelPrice

__all__ = ["cost_of", "image_call_cost", "image_cost", "image_token_cost"]

_MILLION = Decimal(1_000_000)
_NANO_DOLLAR = Decimal("1e-9")


def cost_of(usage: Usage | None, price: ModelPrice | None) -> float | None:
    """The USD cost of a chat or embeddings call's token ``usage``, or ``None`` when it cannot be priced.

    ``usage`` is read as the adapters report it: ``prompt_tokens`` includes the cache reads
    (``cached_tokens``) and the cache writes (``cache_write_tokens``), and ``completion_tokens`` includes
    ``reasoning_tokens``. So the uncached prompt is billed at ``input``, cache reads at ``cached_input`` and
    cache writes at ``cache_write`` (each falling back to ``input``), and all completion tokens at
    ``output``: reasoning tokens are output tokens and are not billed a second time. Embeddings have no
    completion tokens and cost their input only.

    ``None`` when the price is unknown, and when tokens were used that the price has no rate for (completion
    tokens against an input-only price): an unpriced part is unknown, not free. Image output is not token
    usage here; price generated images with :func:`image_cost`.
    """
    if usage is None or price is None:
        return None
    cached = max(usage.cached_tokens, 0)
    written = max(usage.cache_write_tokens, 0)
    # Never below zero: a provider that reported cache reads outside prompt_tokens must not earn a credit.
    uncached = max(usage.prompt_tokens - cached - written, 0)
    completion = max(usage.completion_tokens, 0)
    # Each part in turn, without a list of them (every call is priced): the same sum, in the same order.
    total = Decimal(0)
    if uncached:
        if price.input is None:
            return None
        total += uncached * price.input
    if cached:
        rate = price.cached_input if price.cached_input is not None else price.input
        if rate is None:
            return None
        total += cached * rate
    if written:
        rate = price.cache_write if price.cache_write is not None else price.input
        if rate is None:
            return None
        total += written * rate
    if completion:
        if price.output is None:
            return None
        total += completion * price.output
    return _usd(total / _MILLION)


def image_cost(price: ModelPrice | None, n: int, size: str | None = None, quality: str | None = None) -> float | None:
    """The USD cost of ``n`` generated images of ``size`` and ``quality``, or ``None`` when it cannot be priced.

    ``size`` and ``quality`` are OpenAI's Images API values (``1024x1024``, ``low``/``medium``/``high`` for
    gpt-image models, ``standard``/``hd`` for DALL-E 3); pass what the response reports when it does, as
    ``auto`` or a missing value is priced at the model's default (the API's default, or the dearest option
    where the model chooses). The price per image comes from the model's ``images`` table; a model without
    one for that quality and size is priced by ``mp_price`` at the size's megapixels (1024 x 1024 when no
    size is given). ``None`` when the model has neither.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    if price is None:
        return None
    each = price.images.price_for(quality, size) if price.images is not None else None
    if each is None and price.mp_price is not None:
        each = price.mp_price * Decimal(str(megapixels(parse_size(size) or DEFAULT_DIMENSIONS)))
    return _usd(each * n) if each is not None else None


def image_token_cost(usage: Usage | None, price: ModelPrice | None) -> float | None:
    """The USD cost of an image call by its tokens, as gpt-image-1 and Gemini's image models bill them, or
    ``None`` when the price has no rate for generated image tokens or the usage counts none.

    Generated image tokens cost ``image_output``; an answer's other output tokens (text a model wrote beside
    its images) ``output``; image tokens of the prompt (an image to edit) ``image_input``; and the rest of
    the prompt ``input`` (each falling back as :func:`cost_of` does). A provider that does not tell its
    output's image tokens apart has them all counted as image tokens.
    """
    if usage is None or price is None or price.image_output is None or usage.completion_tokens <= 0:
        return None
    image_out = usage.output_image_tokens or usage.completion_tokens
    text_out = max(usage.completion_tokens - image_out, 0)
    image_in = min(max(usage.input_image_tokens, 0), max(usage.prompt_tokens, 0))
    text_in = max(usage.prompt_tokens - image_in, 0)
    parts = (
        (text_in, price.input),
        (image_in, price.image_input if price.image_input is not None else price.input),
        (image_out, price.image_output),
        (text_out, price.output if price.output is not None else price.image_output),
    )
    total = Decimal(0)
    for tokens, rate in parts:
        if not tokens:
            continue
        if rate is None:
            return None
        total += tokens * rate
    return _usd(total / _MILLION)


def image_call_cost(
    price: ModelPrice | None, usage: Usage | None, n: int, size: str | None = None, quality: str | None = None
) -> float | None:
    """What an image generation call cost: by its image tokens when the provider reported them and the price
    has a rate for them (:func:`image_token_cost`), else its ``n`` images by quality and size or by the
    megapixel (:func:`image_cost`), else its token usage at the model's token prices (:func:`cost_of`).
    ``None`` when none of these prices it."""
    by_tokens = image_token_cost(usage, price)
    if by_tokens is not None:
        return by_tokens
    by_image = image_cost(price, n, size, quality)
    if by_image is not None:
        return by_image
    return cost_of(usage, price) if usage is not None and usage.total_tokens else None


def _usd(amount: Decimal) -> float:
    return float(amount.quantize(_NANO_DOLLAR, rounding=ROUND_HALF_EVEN))
