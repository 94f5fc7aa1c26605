"""Anthropic answers as OpenAI ``chat.completion`` objects: content, finish reasons and usage.

Answers keep Anthropic's message id and model. ``prompt_tokens`` counts cached input too (input +
cache reads + cache writes), ``cached_tokens`` is the cache reads, and ``cache_creation_input_tokens``
is passed on so that cache writes can be priced. In ``json_object`` mode (see :mod:`.request`) the
forced tool's input is the message content, and the answer finishes with ``stop``.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.providers.anthropic.mapping import finish_reason, openai_usage

__all__ = ["chat_completion", "finish_reason", "json_object_mode", "openai_usage"]

JSON = dict[str, Any]


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


def json_object_mode(body: dict[str, Any] | None) -> bool:
    """Whether the client asked for ``response_format`` ``json_object``, which a forced tool emulates."""
    response_format = (body or {}).get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_object"
