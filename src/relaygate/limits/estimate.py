"""The worst case of a model call, reserved before it is forwarded, and what a stream cut short used.

Prompt tokens are estimated from above without a tokenizer: a token of any byte-level BPE (OpenAI, Anthropic,
Llama, ...) covers at least one byte, so the UTF-8 bytes of the text bound its tokens. Everything else sent
to the model (roles, tool calls, tool definitions, ``response_format``) is counted as the bytes of its JSON,
which is larger still; each message adds :data:`MESSAGE_OVERHEAD` and the request :data:`REQUEST_OVERHEAD`
for the chat template's own tokens. Images, files and audio cost what :mod:`relaygate.limits.attachments`
bounds them by; those it cannot size are listed in :attr:`Estimate.unsized` for the limiter to decide on.
Anthropic adds a system prompt of its own to every request that defines tools: :data:`ANTHROPIC_TOOLS_TOKENS`.

Output tokens are bounded by ``max_completion_tokens`` or ``max_tokens``, times ``n``; without either, by the
model's output cap (see :func:`output_cap`). The reserved cost is the prompt at the dearest of the model's
input rates (plain, cache read, cache write) plus the output at its output rate, rounded up to a nano-dollar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

import orjson

from relaygate.image_sizes import size_label
from relaygate.limits.attachments import IMAGE_TOKENS, part_tokens
from relaygate.pricing import ModelPrice, image_cost

__all__ = [
    "ANTHROPIC_TOOLS_TOKENS",
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD",
    "REQUEST_OVERHEAD",
    "Estimate",
    "StreamTally",
    "estimate",
    "token_cost",
]

MESSAGE_OVERHEAD = 8
REQUEST_OVERHEAD = 16
# The output cap assumed when a request sets no max_tokens and neither the config nor a price names one for
# the model: 128K, what the GPT-5 family and Claude Opus 4.6 write at most (only gpt-5-pro, listed with its
# own 272K, writes more).
DEFAULT_MAX_OUTPUT_TOKENS = 131_072
# Anthropic's tool-use system prompt, added to a request that defines tools: 346 tokens for recent models
# (auto or none), 313 (any or a named tool), at most 530 for Claude 3 Opus (docs.anthropic.com, "Tool use
# pricing and tokens"). The adapter defines tools for the request's tools, for a json_object response_format
# (a forced tool) and for tool calls in the history (declared with tool_choice none).
ANTHROPIC_TOOLS_TOKENS = 600
# Content parts that carry media (relaygate.limits.attachments).
MEDIA_PARTS = frozenset({"image_url", "file", "input_audio"})
# Request fields that reach the model as part of its prompt.
PROMPT_FIELDS = ("tools", "functions", "tool_choice", "response_format", "prediction")

_MILLION = Decimal(1_000_000)
_NANOS = Decimal(1_000_000_000)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Upper bounds of a call: its prompt and output tokens; for image generation, its images.

    ``unsized`` names the attachments (``messages[0].content[1]``) whose tokens cannot be told from the
    request, which ``prompt_tokens`` does not count.
    """

    prompt_tokens: int
    output_tokens: int = 0
    images: int = 0
    unsized: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def estimate(endpoint: str, body: dict[str, Any], output_cap: int, *, provider_kind: str | None = None) -> Estimate:
    """The worst case of a request to ``endpoint`` (``chat``, ``embeddings``, ``images``) for a provider of
    ``provider_kind``."""
    if endpoint == "embeddings":
        return Estimate(prompt_tokens=_input_tokens(body.get("input")))
    if endpoint == "images":
        return Estimate(prompt_tokens=_text_tokens(body.get("prompt")), images=_n(body))
    messages = _list(body.get("messages"))
    unsized: list[str] = []
    prompt = REQUEST_OVERHEAD
    for index, message in enumerate(messages):
        prompt += _message_tokens(message, index, unsized)
    prompt += sum(_json_tokens(body[name]) for name in PROMPT_FIELDS if body.get(name) is not None)
    if provider_kind == "anthropic" and _defines_tools(body, messages):
        prompt += ANTHROPIC_TOOLS_TOKENS
    output = max_output_tokens(body, output_cap) * _n(body)
    return Estimate(prompt_tokens=prompt, output_tokens=output, unsized=tuple(unsized))


def _defines_tools(body: dict[str, Any], messages: list[Any]) -> bool:
    """Whether the Anthropic adapter sends tools for this request (see :data:`ANTHROPIC_TOOLS_TOKENS`)."""
    response_format = body.get("response_format")
    if body.get("tools") or body.get("functions"):
        return True
    if isinstance(response_format, dict) and response_format.get("type") == "json_object":
        return True
    return any(isinstance(m, dict) and (m.get("tool_calls") or m.get("role") == "tool") for m in messages)


def max_output_tokens(body: dict[str, Any], output_cap: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return output_cap


def token_cost(prompt_tokens: int, output_tokens: int, price: ModelPrice | None) -> int | None:
    """Nano-dollars of ``prompt_tokens`` at the dearest input rate and ``output_tokens``, rounded up; ``None``
    when the price has no rate for tokens that are used."""
    if price is None or (price.input is None and prompt_tokens) or (price.output is None and output_tokens):
        return None
    input_rate = max(rate for rate in (price.input, price.cached_input, price.cache_write) if rate is not None)
    total = prompt_tokens * input_rate + output_tokens * (price.output or Decimal(0))
    return int((total / _MILLION * _NANOS).to_integral_value(rounding=ROUND_CEILING))


def images_cost(body: dict[str, Any], images: int, price: ModelPrice | None) -> int | None:
    """Nano-dollars of generating ``images`` at the request's size (``size``, or ``width`` and ``height``) and
    quality, by the model's per-image or per-megapixel price: the dearest option when the request leaves them
    to the model, 1024 x 1024 per megapixel when it names no size."""
    size, quality = size_label(body) or body.get("size"), body.get("quality")
    usd = image_cost(
        price, images, size if isinstance(size, str) else None, quality if isinstance(quality, str) else None
    )
    return None if usd is None else math.ceil(Decimal(str(usd)) * _NANOS)


class StreamTally:
    """Counts what a stream sent, so that one cut short without usage settles to an estimate, never to zero.

    A :class:`~relaygate.context.ResponseObserver`. Output tokens are estimated as one per chunk that carried
    text, or a token per four bytes of that text when that is more.
    """

    __slots__ = ("bytes", "chunks")

    def __init__(self) -> None:
        self.bytes = 0
        self.chunks = 0

    @property
    def output_tokens(self) -> int:
        return max(self.chunks, math.ceil(self.bytes / 4))

    def on_response(self, ctx: Any, body: dict[str, Any]) -> None:
        pass

    def on_chunk(self, ctx: Any, chunk: dict[str, Any]) -> None:
        size = 0
        for choice in _list(chunk.get("choices")):
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            for name in ("content", "refusal", "reasoning_content"):
                size += _text_bytes(delta.get(name))
            for call in _list(delta.get("tool_calls")):
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    size += _text_bytes(function.get("name")) + _text_bytes(function.get("arguments"))
        if size:
            self.chunks += 1
            self.bytes += size

    def on_end(self, ctx: Any) -> None:
        pass


def _message_tokens(message: Any, at: int, unsized: list[str]) -> int:
    """The tokens of ``messages[at]``; the path of each attachment it cannot size goes to ``unsized``."""
    if not isinstance(message, dict):
        return MESSAGE_OVERHEAD + _json_tokens(message)
    tokens = MESSAGE_OVERHEAD
    for name, value in message.items():
        if name == "content":
            tokens += _content_tokens(value, at, unsized)
        elif value is not None:
            tokens += _json_tokens(value)
    return tokens


def _content_tokens(content: Any, at: int, unsized: list[str]) -> int:
    if isinstance(content, str):
        return len(content.encode())
    if content is None:
        return 0
    if not isinstance(content, list):
        return _json_tokens(content)
    tokens = 0
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" or kind == "refusal":
            tokens += _text_tokens(part.get(kind))
        elif kind in MEDIA_PARTS:
            media = part_tokens(part)
            if media is None:
                unsized.append(f"messages[{at}].content[{index}]")
            tokens += media or 0
        else:
            tokens += _json_tokens(part)
    return tokens


def _input_tokens(value: Any) -> int:
    """Embeddings input: text, texts, or token arrays (counted exactly)."""
    if isinstance(value, str):
        return _text_tokens(value)
    if not isinstance(value, list):
        return _json_tokens(value)
    tokens = 0
    for item in value:
        if isinstance(item, int):
            tokens += 1
        elif isinstance(item, list):
            tokens += len(item)
        else:
            tokens += _text_tokens(item) if isinstance(item, str) else _json_tokens(item)
    return tokens


def _text_tokens(text: Any) -> int:
    return _text_bytes(text) if isinstance(text, str) else 0


def _text_bytes(text: Any) -> int:
    return len(text.encode()) if isinstance(text, str) else 0


def _json_tokens(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return len(str(value).encode())


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _n(body: dict[str, Any]) -> int:
    """How many answers (chat) or images the request asks for."""
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1
