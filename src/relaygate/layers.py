"""The gateway's ledger and limiter, built from the settings (what :class:`~relaygate.gateway.Gateway` holds)."""

from __future__ import annotations

from collections.abc import Mapping

from relaygate.counters import open_counters
from relaygate.guards import Guards
from relaygate.ledger import Ledger
from relaygate.limits.limiter import Limiter
from relaygate.pricing import PriceBook
from relaygate.providers.base import Provider
from relaygate.routing import ModelRouter
from relaygate.settings import Settings
from relaygate.store import open_store
from relaygate.telemetry import Telemetry

__all__ = ["build_ledger", "build_limiter"]


def build_ledger(settings: Settings, providers: Mapping[str, Provider], prices: PriceBook) -> Ledger | None:
    if settings.database is None:
        return None
    stores_messages = {project.id: project.store_messages for project in settings.projects}
    return Ledger(
        open_store(settings.database),
        prices=prices,
        store_messages=lambda project_id: stores_messages.get(project_id, True),
        provider_kinds={name: provider.kind for name, provider in providers.items()},
    )


def build_limiter(
    settings: Settings,
    router: ModelRouter,
    ledger: Ledger | None,
    prices: PriceBook,
    guards: Guards,
    telemetry: Telemetry | None,
) -> Limiter | None:
    projects = {project.id: project.limits for project in settings.projects if project.limits is not None}
    if not projects:
        return None
    counters, prefix = open_counters(settings.counters)
    return Limiter(
        projects=projects,
        counters=counters,
        router=router,
        ledger=ledger,
        prices=prices,
        guard_calls=guards.model_calls,
        prefix=prefix,
        meter=telemetry.meter if telemetry is not None else None,
    )
