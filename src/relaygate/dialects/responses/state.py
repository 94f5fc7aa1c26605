"""Conversation state of the Responses API, kept per project in the ledger's store.

A response made with ``store`` (the default) is saved with the whole input it answered, before its last
event or byte reaches the client, so that the client's next request (``previous_response_id``, ``GET``)
finds it, on this gateway or any other sharing the database. ``store: false`` keeps nothing here (the
ledger still records the call). A response of another project is a 404, as one that does not exist.

Input items get ids when they are stored (``msg_...``), as ``GET /v1/responses/{id}/input_items`` lists
them with one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from relaygate.dialects.responses.answer import item_id, output_as_input
from relaygate.errors import InvalidRequestError, NotFoundError, ServerError
from relaygate.store import Store, StoredResponse

if TYPE_CHECKING:
    from relaygate.ledger import Ledger

__all__ = ["Conversations"]

logger = logging.getLogger("relaygate.dialects")

JSON = dict[str, Any]
ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


class Conversations:
    """Reads and writes stored responses through the ledger (``None``: the ledger is off, nothing is kept)."""

    def __init__(self, ledger: Ledger | None) -> None:
        self.ledger = ledger

    async def history(self, project_id: str, response_id: str) -> list[JSON]:
        """The input of the next turn after ``response_id``: its whole input, then its output."""
        stored = await self._get(project_id, response_id, param="previous_response_id")
        return [*stored.input_items, *output_as_input(stored.response.get("output") or [])]

    async def save(self, project_id: str, response: JSON, input_items: list[JSON]) -> None:
        """Keep ``response`` (when its request asked to be stored); a failure is logged, not the client's."""
        if self.ledger is None or not self.ledger.running or response.get("store") is False:
            return
        stored = StoredResponse(
            id=str(response["id"]),
            project_id=project_id,
            created_at=datetime.now(UTC),
            model=str(response.get("model") or ""),
            previous_response_id=response.get("previous_response_id"),
            input_items=[_with_id(item) for item in input_items],
            response=response,
        )
        try:
            await self.ledger.store.save_response(stored)
        except Exception:
            logger.exception("responses: response %s could not be stored", stored.id)

    async def retrieve(self, project_id: str, response_id: str) -> JSON:
        return (await self._get(project_id, response_id)).response

    async def delete(self, project_id: str, response_id: str) -> JSON:
        store = self._store()
        if not await store.delete_response(project_id, response_id):
            raise _not_found(response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def input_items(self, project_id: str, response_id: str, query: bytes) -> JSON:
        """``GET /v1/responses/{id}/input_items``: a page of the response's input items."""
        items = (await self._get(project_id, response_id)).input_items
        params = dict(parse_qsl(query.decode("latin-1")))
        order = params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidRequestError("'order' must be 'asc' or 'desc'.", param="order", code="invalid_value")
        limit_text = params.get("limit", "20")
        if not (limit_text.isascii() and limit_text.isdigit() and 1 <= int(limit_text) <= 100):
            raise InvalidRequestError("'limit' must be an integer from 1 to 100.", param="limit", code="invalid_value")
        ordered = list(items) if order == "asc" else list(reversed(items))
        ids = [item.get("id") for item in ordered]
        for cursor in ("after", "before"):
            if cursor in params:
                if params[cursor] not in ids:
                    raise InvalidRequestError(
                        f"No input item '{params[cursor]}' in this response.", param=cursor, code="invalid_value"
                    )
                at = ids.index(params[cursor])
                ordered = ordered[at + 1 :] if cursor == "after" else ordered[:at]
                ids = [item.get("id") for item in ordered]
        page = ordered[: int(limit_text)]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": len(ordered) > len(page),
        }

    async def _get(self, project_id: str, response_id: str, *, param: str | None = None) -> StoredResponse:
        stored = await self._store().get_response(project_id, response_id)
        if stored is None:
            raise _not_found(response_id, param)
        return stored

    def _store(self) -> Store:
        if self.ledger is None:
            raise NotFoundError(
                "Responses are not stored: the gateway runs without a ledger (database: null).",
                code="not_found",
            )
        if not self.ledger.running:
            raise ServerError("The ledger has not started: the gateway's lifespan did not run.", status=503)
        return self.ledger.store


def _not_found(response_id: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.", param=param, code="not_found")


def _with_id(item: JSON) -> JSON:
    """An input item as listed: with an id, and a message's text as a content part."""
    if item.get("type") == "message" and isinstance(item.get("content"), str):
        kind = "output_text" if item.get("role") == "assistant" else "input_text"
        item = {**item, "content": [{"type": kind, "text": item["content"]}]}
    if item.get("id"):
        return item
    prefix = ID_PREFIXES.get(str(item.get("type")), "item")
    return {"id": item_id(prefix), **item}
