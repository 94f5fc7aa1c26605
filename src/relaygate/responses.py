"""Pydantic models of what the proxy answers: the OpenAI shapes every provider's answer is relayed in.

They document the answers (the OpenAPI document's schemas come from them) and say what a client may rely
on: the fields listed as required are in every answer, whichever provider gave it. Providers add fields
of their own, which are relayed as they come (``extra="allow"``). The proxy relays answers as bytes and
does not validate them against these models; the schemathesis run in ``tests/test_openapi.py`` checks
that they hold.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "CompletionUsage",
    "EmbeddingList",
    "Health",
    "ImagesResponse",
    "ModelInfo",
    "ModelList",
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class ToolCallFunction(_Answer):
    name: str
    arguments: str = Field(description="The arguments as a JSON text, as the model wrote them.")


class ToolCall(_Answer):
    id: str
    type: Literal["function"]
    function: ToolCallFunction


class AssistantMessage(_Answer):
    role: Literal["assistant"]
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class Choice(_Answer):
    index: int
    message: AssistantMessage
    finish_reason: str | None = Field(
        description="stop, length, tool_calls, content_filter (the provider's reason, mapped to OpenAI's)."
    )
    logprobs: Any = None


class CompletionUsage(_Answer):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(0, ge=0)
    total_tokens: int = Field(ge=0)
    prompt_tokens_details: dict[str, Any] | None = Field(None, description="cached_tokens, audio_tokens, ...")
    completion_tokens_details: dict[str, Any] | None = Field(None, description="reasoning_tokens, ...")


class ChatCompletion(_Answer):
    """A whole answer (``stream`` false). With ``stream`` true the answer is a ``text/event-stream`` of
    ``chat.completion.chunk`` events ending with ``data: [DONE]``; an error after the stream has started
    is its last event, ``data: {"error": {...}}``."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class ToolCallDelta(_Answer):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: dict[str, Any] | None = Field(None, description="`name` in the first delta, `arguments` in pieces.")


class Delta(_Answer):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    refusal: str | None = None


class ChunkChoice(_Answer):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: Any = None


class ChatCompletionChunk(_Answer):
    """One event of a streamed answer. With ``stream_options.include_usage`` the last chunk before
    ``[DONE]`` has no choices and the call's ``usage``."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class Embedding(_Answer):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="Numbers, or base64 of little-endian float32s.")


class EmbeddingUsage(_Answer):
    prompt_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class EmbeddingList(_Answer):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage | None = None


class Image(_Answer):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(_Answer):
    created: int
    data: list[Image]


class ModelPricing(_Answer):
    unit: str = Field(description='"USD per 1M tokens".')
    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    cache_write: float | None = None
    images: dict[str, dict[str, float]] | None = Field(None, description="USD per image, by quality and size.")


class ModelInfo(_Answer):
    """A model the gateway can call: a provider's (``provider/model``), a virtual model of the config
    (with ``strategy`` and ``targets``) or one an admin registered."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    provider: str | None = None
    strategy: str | None = None
    targets: list[str] | None = None
    description: str | None = None
    pricing: ModelPricing | None = None
    model_type: str | None = None
    context_size: int | None = None
    capabilities: list[str] | None = None


class ModelList(_Answer):
    object: Literal["list"]
    data: list[ModelInfo]


class Health(BaseModel):
    status: Literal["ok"]
