"""Pydantic models of the Responses API as relaygate serves it, for the OpenAPI document (the requests are
checked field by field in :mod:`.request`, the answers built in :mod:`.answer`, :mod:`.stream` and
:mod:`.state`; the schemathesis run in ``tests/test_openapi_fuzz.py`` holds them to these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "InputItemList",
    "InputItemsQuery",
    "ResponseCreateRequest",
    "ResponseDeleted",
    "ResponseObject",
    "ResponseStreamEvent",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ResponseCreateRequest(_Open):
    """``POST /v1/responses``: OpenAI's Responses request; what a chat call cannot carry is refused with a 400
    unless the target serves the Responses API itself."""

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] | None = Field(None, description="A user message, or a list of items.")
    instructions: str | None = None
    previous_response_id: str | None = Field(None, description="Continue the conversation of a stored response.")
    stream: bool | None = None
    store: bool | None = None
    tools: list[dict[str, Any]] | None = None


class ResponseObject(_Open):
    id: str
    object: Literal["response"]
    created_at: int
    status: str = Field(description="completed, incomplete, failed, in_progress.")
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ResponseStreamEvent(_Open):
    """One event of a streamed response (``response.created`` ... ``response.completed``)."""

    type: str
    sequence_number: int | None = None


class ResponseDeleted(_Open):
    id: str
    object: Literal["response.deleted"]
    deleted: bool


class InputItemList(_Open):
    object: Literal["list"]
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


class InputItemsQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"
    after: str | None = Field(None, description="An item id: the page starts after it.")
    before: str | None = Field(None, description="An item id: the page ends before it.")
