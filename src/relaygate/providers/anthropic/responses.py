"""Anthropic answers as OpenAI ``chat.completion`` objects: content, finish reasons and usage.

Answers keep Anthropic's message id and model. ``prompt_tokens`` counts cached input too (input +
cache reads + cache writes), ``cached_tokens`` is the cache reads, and ``cache_creation_input_tokens``
is passed on so that cache writes can be priced. In ``json_object`` mode (see :mod:`.request`) the
forced tool's input is the message content, and the answer finishes with ``stop``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["chat_completion", "finish_reason", "json_object_mode", "openai_usage"]

JSON = dict[str, Any]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def chat_completion(message: dict[str, Any], *, created: int, json_mode: bool = False) -> JSON:
    """The OpenAI ``chat.completion`` for a whole Anthropic message."""
    texts: list[str] = []
    tool_calls: list[JSON] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if json_mode:
                texts.append(arguments)
            else:
                function = {"name": block.get("name"), "arguments": arguments}
                tool_calls.append({"id": block.get("id"), "type": "function", "function": function})
    reply: JSON = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason"), json_mode),
            }
        ],
        "usage": openai_usage(message.get("usage") or {}),
    }


def finish_reason(stop_reason: Any, json_mode: bool = False) -> str:
    if stop_reason == "tool_use" and json_mode:
        return "stop"  # the tool call was the JSON answer
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def openai_usage(usage: Mapping[str, Any]) -> JSON:
    """OpenAI usage for Anthropic's, whose ``input_tokens`` leaves out what was read from or written to the cache."""
    cache_read = _count(usage.get("cache_read_input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + cache_read + cache_write
    completion = _count(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
        "cache_creation_input_tokens": cache_write,
    }


def json_object_mode(body: dict[str, Any] | None) -> bool:
    """Whether the client asked for ``response_format`` ``json_object``, which a forced tool emulates."""
    response_format = (body or {}).get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_object"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
