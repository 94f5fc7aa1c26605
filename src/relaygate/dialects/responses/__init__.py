"""The OpenAI Responses API inbound: ``/v1/responses`` in front of every provider.

``POST /v1/responses`` is translated into the canonical chat call (:mod:`.request`), served by every
adapter and middleware as a chat call, and its answer, stream and errors translated back (:mod:`.answer`,
:mod:`.stream`); an OpenAI provider with ``native_responses: true`` gets the request as it is
(:mod:`.native`). Responses are stored per project for ``previous_response_id`` and
``GET``/``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items`` (:mod:`.state`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from relaygate.dialects.base import Dialect, DialectRoute
from relaygate.dialects.responses.exchange import ResponsesExchange
from relaygate.dialects.responses.state import Conversations

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.ledger import Ledger

__all__ = ["ResponsesDialect", "ResponsesExchange"]

_ID = r"(?P<id>[^/]{1,256})"


class ResponsesDialect(Dialect):
    """The Responses API; ``ledger`` keeps the stored responses (``None``: nothing is stored)."""

    name: ClassVar[str] = "responses"
    routes: ClassVar[tuple[DialectRoute, ...]] = (
        DialectRoute("POST", "/v1/responses", canonical="/v1/chat/completions", name="create"),
        DialectRoute("GET", f"/v1/responses/{_ID}", name="retrieve"),
        DialectRoute("DELETE", f"/v1/responses/{_ID}", name="delete"),
        DialectRoute("GET", f"/v1/responses/{_ID}/input_items", name="input_items"),
    )

    def __init__(self, *, ledger: Ledger | None) -> None:
        self.conversations = Conversations(ledger)

    def exchange(self, ctx: RequestContext, route: DialectRoute, params: dict[str, str]) -> ResponsesExchange:
        return ResponsesExchange(self, ctx, route, params)
