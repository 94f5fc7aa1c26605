"""Pydantic models of the request bodies relaygate accepts, and their parsing into OpenAI-shaped errors.

The models check what the gateway relies on (model, messages, input, prompt, stream, the gateway's
own ``extra``) and keep every other field as it came (``extra="allow"``): OpenAI parameters the
gateway does not know still reach the provider unchanged.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relaygate.errors import InvalidRequestError

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "EmbeddingRequest",
    "ExtraOptions",
    "ImageGenerationRequest",
    "UserInfo",
    "parse_json_object",
    "parse_request",
]

# Fields of the LangDB API that the gateway consumes and providers would reject.
GATEWAY_FIELDS = frozenset({"extra", "router", "mcp_servers"})


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class UserInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    tags: list[str] = Field(default_factory=list)


class ExtraOptions(BaseModel):
    """The gateway's ``extra`` object (guards and user in the LangDB API)."""

    model_config = ConfigDict(extra="allow")

    guards: list[str | dict[str, Any]] = Field(default_factory=list)
    user: UserInfo | None = None


class ChatMessage(_Request):
    role: str
    content: str | list[Any] | None = None


class StreamOptions(_Request):
    include_usage: bool | None = None


class ChatCompletionRequest(_Request):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    extra: ExtraOptions | None = None

    @property
    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class EmbeddingRequest(_Request):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    extra: ExtraOptions | None = None


class ImageGenerationRequest(_Request):
    model: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    n: int | None = Field(None, ge=1, le=10)
    response_format: Literal["url", "b64_json"] | None = None
    extra: ExtraOptions | None = None


RequestT = TypeVar("RequestT", bound=BaseModel)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. Send a JSON object.", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    return data


def parse_request(model: type[RequestT], data: dict[str, Any]) -> RequestT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidRequestError:
    error = exc.errors()[0]
    param = _param(error["loc"])
    if error["type"] == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    return InvalidRequestError(f"Invalid value for '{param}': {error['msg']}.", param=param, code="invalid_value")


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part[:1].islower() or not out:
            # pydantic adds union member names ("str", "list[str]") to the location; they are not params.
            if out and part in {
                "str",
                "int",
                "list[str]",
                "list[int]",
                "list[list[int]]",
                "list[any]",
                "dict[str,any]",
            }:
                continue
            out += f".{part}" if out else part
    return out
