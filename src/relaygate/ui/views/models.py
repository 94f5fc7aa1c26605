"""Models and prices (the admin key's page): what is routable, the virtual models and their targets with the
state of each target's circuit breaker, the registered models, and the prices every call is costed at."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from starlette.responses import Response

from relaygate.pricing import PriceEntry
from relaygate.ui.sources import Sources
from relaygate.ui.viewer import UiRequest
from relaygate.ui.views.common import page

__all__ = ["models"]

# A provider that lists its models from its upstream: how long the page waits for that list.
LIST_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class TargetState:
    key: str
    state: str
    failures: int
    retry_after: int
    price: PriceEntry | None


async def models(req: UiRequest, src: Sources) -> Response:
    router = src.router
    breaker = router.breaker
    failing = breaker.failing()
    listed: dict[str, list[str] | None] = {}
    for name, provider in router.providers.items():
        with anyio.move_on_after(LIST_TIMEOUT):
            listed[name] = await provider.list_models()
        listed.setdefault(name, None)
    prices = src.ledger.prices if src.ledger is not None else None

    def target(key: str) -> TargetState:
        provider, _, model = key.partition("/")
        price = None
        if prices is not None and provider in router.providers:
            price = prices.lookup(router.providers[provider].kind, model, provider_name=provider)
        return TargetState(key, breaker.state(key), failing.get(key, 0), breaker.retry_after(key), price)

    virtual = [(model, [target(key) for key in model.target_keys()]) for model in router.virtual.values()]
    seen = {t.key for _, targets in virtual for t in targets}
    others = [target(key) for key in sorted(failing) if key not in seen]
    registered = await src.ledger.store.registered_models() if src.ledger is not None and src.ledger.running else []
    query = req.query.get("q", "").strip().lower()
    catalogue = prices.catalogue_entries() if prices is not None else []
    if query:
        catalogue = [e for e in catalogue if query in f"{e.provider}/{e.model}".lower()]
    return page(
        req,
        src,
        "models.html",
        nav="models",
        providers=[(name, provider, listed[name]) for name, provider in router.providers.items()],
        virtual=virtual,
        others=others,
        registered=registered,
        catalogue=catalogue,
        q=req.query.get("q", ""),
        breaker_on=breaker.settings.enabled,
    )
