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
    "normalise_chat",
    "parse_json_object",
    "parse_request",
    "user_of",
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


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ChatCompletionRequest(_Request):
    """The chat request. Sampling values are checked against the ranges OpenAI documents, so that a call
    that cannot succeed is answered 400 here, naming the field, and no odd value reaches a span."""

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    extra: ExtraOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    n: int | None = Field(None, ge=1, le=128)
    max_tokens: int | None = Field(None, ge=1, le=INT64_MAX)
    max_completion_tokens: int | None = Field(None, ge=1, le=INT64_MAX)
    presence_penalty: float | None = Field(None, ge=-2, le=2, allow_inf_nan=False)
    frequency_penalty: float | None = Field(None, ge=-2, le=2, allow_inf_nan=False)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    seed: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    # A bare string (seed 001's example sends "json_object") is taken for the object of that type.
    response_format: Literal["text", "json_object"] | dict[str, Any] | None = None

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
    """OpenAI's image request, and what Langbase's and Together's add: ``width`` and ``height`` (instead of
    ``size``), ``steps`` and ``image_url`` (the image to start from). The adapters map them per provider."""

    model: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    n: int | None = Field(None, ge=1, le=10)
    response_format: Literal["url", "b64_json"] | None = None
    size: str | None = None
    quality: str | None = None
    width: int | None = Field(None, ge=1, le=16384)
    height: int | None = Field(None, ge=1, le=16384)
    steps: int | None = Field(None, ge=1, le=1000)
    image_url: str | None = Field(None, min_length=1)
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


def user_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request's ``extra.user``, as the proxy notes it on the context; ``None`` when absent or malformed."""
    extra = body.get("extra")
    user = extra.get("user") if isinstance(extra, dict) else None
    if not isinstance(user, dict):
        return None
    try:
        return UserInfo.model_validate(user).model_dump(exclude_none=True)
    except ValidationError:
        return None


def normalise_chat(body: dict[str, Any]) -> None:
    """What the providers expect of a valid chat body: ``response_format: "json_object"`` becomes
    ``{"type": "json_object"}``."""
    response_format = body.get("response_format")
    if isinstance(response_format, str):
        body["response_format"] = {"type": response_format}


def parse_request(model: type[RequestT], data: dict[str, Any]) -> RequestT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidRequestError:
    errors = exc.errors()
    param = _param(errors[0]["loc"])
    if errors[0]["type"] == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    # A union reports one error per member it tried; together they say what would have been valid.
    reasons = dict.fromkeys(e["msg"] for e in errors if _param(e["loc"]) == param)
    return InvalidRequestError(
        f"Invalid value for '{param}': {'; or '.join(reasons)}.", param=param, code="invalid_value"
    )


# pydantic names the union member it tried in the error location ("str", "list[str]"): not a parameter.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" not in part and part not in _TYPE_TAGS:
            out += f".{part}" if out else part
    return out
