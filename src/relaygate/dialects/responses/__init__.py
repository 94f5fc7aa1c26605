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
from relaygate.dialects.responses.shapes import (
    InputItemList,
    InputItemsQuery,
    ResponseCreateRequest,
    ResponseDeleted,
    ResponseObject,
    ResponseStreamEvent,
)
from relaygate.dialects.responses.state import Conversations
from relaygate.routes import Route

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.ledger import Ledger

__all__ = ["ResponsesDialect", "ResponsesExchange"]

_ID = r"(?P<id>[^/]{1,256})"
_STORED = "Stored responses are kept by the ledger, per project; with the ledger off none is kept (404)."

CREATE = Route(
    "POST",
    "/v1/responses",
    "createResponse",
    "Create a response",
    "Responses API",
    description=(
        "OpenAI's Responses API in front of every provider: translated into a chat call (and its answer, stream "
        "and errors back), or passed as it is to an OpenAI provider with `native_responses: true`. "
        '`previous_response_id` continues a stored response\'s conversation. With `"stream": true` the answer '
        "is the Responses API's event stream."
    ),
    body=ResponseCreateRequest,
    answer=ResponseObject,
    streams=ResponseStreamEvent,
    model_call=True,
    examples={"text": {"model": "mock/echo", "input": "Hello"}},
)
RETRIEVE = Route(
    "GET",
    "/v1/responses/{response_id}",
    "getResponse",
    "Retrieve a stored response",
    "Responses API",
    description=_STORED,
    answer=ResponseObject,
    errors=(404,),
)
DELETE = Route(
    "DELETE",
    "/v1/responses/{response_id}",
    "deleteResponse",
    "Delete a stored response",
    "Responses API",
    description=_STORED,
    answer=ResponseDeleted,
    errors=(404,),
)
INPUT_ITEMS = Route(
    "GET",
    "/v1/responses/{response_id}/input_items",
    "listInputItems",
    "List a stored response's input items",
    "Responses API",
    description=_STORED,
    query=InputItemsQuery,
    answer=InputItemList,
    errors=(404,),
)


class ResponsesDialect(Dialect):
    """The Responses API; ``ledger`` keeps the stored responses (``None``: nothing is stored)."""

    name: ClassVar[str] = "responses"
    routes: ClassVar[tuple[DialectRoute, ...]] = (
        DialectRoute("POST", "/v1/responses", canonical="/v1/chat/completions", name="create", doc=CREATE),
        DialectRoute("GET", f"/v1/responses/{_ID}", name="retrieve", doc=RETRIEVE),
        DialectRoute("DELETE", f"/v1/responses/{_ID}", name="delete", doc=DELETE),
        DialectRoute("GET", f"/v1/responses/{_ID}/input_items", name="input_items", doc=INPUT_ITEMS),
    )

    def __init__(self, *, ledger: Ledger | None) -> None:
        self.conversations = Conversations(ledger)

    def exchange(self, ctx: RequestContext, route: DialectRoute, params: dict[str, str]) -> ResponsesExchange:
        return ResponsesExchange(self, ctx, route, params)
