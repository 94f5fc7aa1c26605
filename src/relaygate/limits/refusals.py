"""What a limited call's answer says: the 429 of the limit that refused it, and OpenAI's x-ratelimit-* headers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from relaygate.errors import GatewayError, QuotaExceededError, RateLimitError
from relaygate.limits.scopes import MINUTE, Item

__all__ = ["Headers", "duration", "rate_headers", "refusal", "usd_text"]

Headers = list[tuple[bytes, bytes]]


def refusal(items: Sequence[Item], levels: Sequence[float], refused: Sequence[int], now: float) -> GatewayError:
    """The error for the limit that refused the call: a spent budget first, as waiting a minute will not help."""
    headers = rate_headers(items, levels, charged=False)
    budgets = [i for i in refused if items[i].unit == "usd"]
    if budgets:
        item = items[budgets[0]]
        assert item.period is not None
        return QuotaExceededError(
            f"{item.scope.label}: {item.name} {usd_text(Decimal(item.value))} reached.",
            headers=[*headers, *_retry(item.period.left(now), retry=False)],
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
