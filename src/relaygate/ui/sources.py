"""What the dashboard's pages read: the ledger, the router (models, breakers), the limiter, and the settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anyio

from relaygate.errors import ServerError
from relaygate.ledger import Ledger
from relaygate.limits.limiter import Limiter
from relaygate.routing import ModelRouter
from relaygate.settings import UiSettings
from relaygate.store import Store
from relaygate.ui.render import Renderer

__all__ = ["Sources"]

FLUSH_WAIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Sources:
    """The gateway's parts a page reads from; ``ledger`` and ``limiter`` are ``None`` when turned off."""

    settings: UiSettings
    renderer: Renderer
    router: ModelRouter
    ledger: Ledger | None
    limiter: Limiter | None
    # Each configured project and the ids of its keys.
    project_keys: Mapping[str, Sequence[str]]
    # Links to the static files carry it, so browsers fetch new ones after an upgrade.
    asset_version: str = ""

    async def store(self) -> Store:
        """The ledger's store, with what this gateway accepted written first (read-your-writes)."""
        if self.ledger is None:
            raise ServerError("The ledger is off (database: null): the dashboard has no calls to show.", status=503)
        if not self.ledger.running:
            raise ServerError("The ledger has not started: the gateway's lifespan did not run.", status=503)
        if self.ledger.writer.pending:
            # A database that is slow or away must not hold the page longer than this.
            with anyio.move_on_after(FLUSH_WAIT_SECONDS):
                await self.ledger.writer.flush()
        return self.ledger.store
