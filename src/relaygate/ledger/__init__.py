"""The ledger on the request path: every model call priced, shown to the caller and recorded.

:class:`Ledger` owns the store (``relaygate.store``), its batch writer and the price book
(``relaygate.pricing``); :class:`~relaygate.middleware.ledger.LedgerMiddleware` puts it around each model
call. The figures are read back through the API routes in ``relaygate.api``.
"""

from __future__ import annotations

from relaygate.ledger.ledger import COST_HEADER, Ledger, PricedCall
from relaygate.ledger.records import call_record, turn_messages

__all__ = ["COST_HEADER", "Ledger", "PricedCall", "call_record", "turn_messages"]
