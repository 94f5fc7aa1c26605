"""Pydantic models of the Messages API as relaygate serves it, for the OpenAPI document (requests are checked
field by field in :mod:`.request` and :mod:`.content`, answers built in :mod:`.answer` and :mod:`.stream`, or
relayed from Anthropic as they came)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnthropicError",
    "CountTokensRequest",
    "Message",
    "MessageCreateRequest",
    "MessageStreamEvent",
    "TokenCount",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class InputMessage(_Open):
    role: str = Field(description="user or assistant (or system, as Claude Code sends it).")
    content: str | list[dict[str, Any]]


class MessageCreateRequest(_Open):
    """``POST /v1/messages``: Anthropic's Messages request. Passed as it is to an Anthropic provider; for any
    other, translated into a chat call (what a chat call cannot carry is refused with a 400 then)."""

    model: str = Field(min_length=1, description="provider/model, a virtual model, or an alias (model_aliases).")
    max_tokens: int = Field(ge=1)
    messages: list[InputMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = Field(None, description="metadata.user_id is the ledger's user.")


class CountTokensRequest(_Open):
    """``POST /v1/messages/count_tokens``: a Messages request without ``max_tokens``."""

    model: str = Field(min_length=1)
    messages: list[InputMessage]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None


class Message(_Open):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]] = Field(description="text, thinking and tool_use blocks.")
    stop_reason: str | None = Field(description="end_turn, max_tokens, stop_sequence, tool_use, refusal, ...")
    stop_sequence: str | None = None
    usage: dict[str, Any] = Field(
        description="input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens."
    )


class MessageStreamEvent(_Open):
    """One event of a streamed message: message_start, content_block_start, content_block_delta,
    content_block_stop, message_delta, message_stop, ping, or error."""

    type: str


class TokenCount(_Open):
    input_tokens: int = Field(ge=0)
    estimated: bool | None = Field(
        None, description="true when the gateway estimated the count (the target is not an Anthropic provider)."
    )


class AnthropicErrorDetail(BaseModel):
    type: str = Field(
        description="invalid_request_error, authentication_error, permission_error, not_found_error, "
        "request_too_large, rate_limit_error, api_error, timeout_error, overloaded_error."
    )
    message: str


class AnthropicError(_Open):
    """Every error of the Messages API's routes (Anthropic's shape), the gateway's own included."""

    type: Literal["error"]
    error: AnthropicErrorDetail
    request_id: str | None = None
