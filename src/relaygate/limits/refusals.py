"""What a limited call's answer says: the 429 of the limit that refused it, and OpenAI's x-ratelimit-* headers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from relaygate.counters.base import EPSILON
from relaygate.errors import GatewayError, QuotaExceededError, RateLimitError
from relaygate.limits.scopes import MINUTE, Item

__all__ = ["Headers", "budget_message", "charged_headers", "duration", "rate_headers", "refusal", "usd_text"]

Headers = list[tuple[bytes, bytes]]

_NANOS = Decimal(1_000_000_000)
_MICRO = Decimal("0.000001")


def refusal(items: Sequence[Item], levels: Sequence[float], refused: Sequence[int], now: float) -> GatewayError:
    """The error for the limit that refused the call: a spent budget first, as waiting a minute will not help."""
    headers = rate_headers(items, levels, charged=False)
    budgets = [i for i in refused if items[i].unit == "usd"]
    if budgets:
        # The budget with the least left is the one to name: a spent one before one the call is too big for.
        index = min(budgets, key=lambda i: items[i].charge.limit - levels[i])
        item = items[index]
        assert item.period is not None
        return QuotaExceededError(
            budget_message(item, levels[index]), headers=[*headers, *_retry(item.period.left(now), retry=False)]
        )
    waits = {i: _wait(items[i], levels[i]) for i in refused}
    index = max(waits, key=lambda i: waits[i])
    item = items[index]
    unit = item.unit
    if item.charge.amount > item.charge.limit:
        message = (
            f"{item.scope.label}: the request needs {item.charge.amount} {unit}, more than {item.name} {item.value}."
        )
        return RateLimitError(message, type=unit, headers=[*headers, *_retry(MINUTE, retry=False)])
    return RateLimitError(
        f"{item.scope.label}: {item.name} {item.value} reached; retry in {duration(waits[index])}.",
        type=unit,
        headers=[*headers, *_retry(waits[index])],
    )


def budget_message(item: Item, level: float) -> str:
    """Why a budget refused the call: it is spent, or what is left of it is less than the call may cost
    (its worst case, which without max_tokens is the model's whole output cap)."""
    budget = f"{item.scope.label}: {item.name} {usd_text(Decimal(item.value))}"
    left = math.floor(item.charge.limit - level + EPSILON)
    if left < _NANOS * _MICRO:  # less than a micro-dollar: nothing worth the name
        return f"{budget} reached."
    return (
        f"{budget}: this call may cost up to ${_usd(item.charge.amount, ROUND_CEILING)} (its worst case: the prompt "
        f"and max_tokens, or the model's output cap, at the price of the dearest model it may reach), and "
        f"${_usd(left, ROUND_FLOOR)} of the budget is left. A lower max_tokens lowers the worst case."
    )


def _usd(nanos: int, rounding: str) -> str:
    """Nano-dollars as dollars to the micro-dollar, rounded the way that keeps the message true."""
    micros = (Decimal(nanos) / _NANOS).quantize(_MICRO, rounding=rounding)
    return usd_text(max(micros, _MICRO))


def _wait(item: Item, level: float) -> float:
    charge = item.charge
    return max((level + charge.amount - charge.limit) / charge.rate, 0.0) if charge.rate else 0.0


def _retry(seconds: float, *, retry: bool = True) -> Headers:
    headers = [(b"retry-after", str(max(1, math.ceil(seconds))).encode())]
    if not retry:
        # The OpenAI SDKs read this and do not retry a spent budget on their own.
        headers.append((b"x-should-retry", b"false"))
    return headers


def rate_headers(items: Sequence[Item], levels: Sequence[float], *, charged: bool) -> Headers:
    """OpenAI's x-ratelimit-* headers, from the tightest requests and tokens limits on the call."""
    headers: Headers = []
    for name, unit in (("requests_per_minute", "requests"), ("tokens_per_minute", "tokens")):
        states = []
        for item, level in zip(items, levels, strict=True):
            if item.name == name:
                charge = item.charge
                after = level + charge.amount if charged else level
                states.append((max(0, math.floor(charge.limit - after + 1e-6)), after / charge.rate, charge.limit))
        if states:
            remaining, reset, limit = min(states, key=lambda s: (s[0], -s[1]))
            headers += [
                (f"x-ratelimit-limit-{unit}".encode(), str(limit).encode()),
                (f"x-ratelimit-remaining-{unit}".encode(), str(remaining).encode()),
                (f"x-ratelimit-reset-{unit}".encode(), duration(reset).encode()),
            ]
    return headers


_REQUESTS = (b"x-ratelimit-limit-requests", b"x-ratelimit-remaining-requests", b"x-ratelimit-reset-requests")
_TOKENS = (b"x-ratelimit-limit-tokens", b"x-ratelimit-remaining-tokens", b"x-ratelimit-reset-tokens")


def charged_headers(items: Sequence[Item], levels: Sequence[float]) -> Headers:
    """:func:`rate_headers` of a call let through (``charged``), in one pass over its items."""
    requests: tuple[int, float, int] | None = None
    tokens: tuple[int, float, int] | None = None
    for item, level in zip(items, levels, strict=True):
        name = item.name
        if name == "requests_per_minute":
            charge = item.charge
            after = level + charge.amount
            remaining, reset = max(0, math.floor(charge.limit - after + 1e-6)), after / charge.rate
            # The tightest: the fewest left, then the latest reset; the first of equals.
            if requests is None or remaining < requests[0] or (remaining == requests[0] and reset > requests[1]):
                requests = (remaining, reset, charge.limit)
        elif name == "tokens_per_minute":
            charge = item.charge
            after = level + charge.amount
            remaining, reset = max(0, math.floor(charge.limit - after + 1e-6)), after / charge.rate
            if tokens is None or remaining < tokens[0] or (remaining == tokens[0] and reset > tokens[1]):
                tokens = (remaining, reset, charge.limit)
    headers: Headers = []
    for names, state in ((_REQUESTS, requests), (_TOKENS, tokens)):
        if state is not None:
            remaining, reset, limit = state
            headers += [
                (names[0], str(limit).encode()),
                (names[1], str(remaining).encode()),
                (names[2], duration(reset).encode()),
            ]
    return headers


def duration(seconds: float) -> str:
    """A duration as OpenAI writes it in x-ratelimit-reset-*: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds > 0 else "0s"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".")
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{text}s"


def usd_text(value: Decimal) -> str:
    """5 -> 5.00, 0.005 -> 0.005."""
    return f"{value:.2f}" if value == round(value, 2) else f"{value.normalize():f}"
