"""The canonical answer as Anthropic's ``message``, and every error as Anthropic's error body.

The inverse of the Anthropic adapter's :mod:`~relaygate.providers.anthropic.responses` and
:mod:`~relaygate.providers.anthropic.errors`, reading the same tables
(:mod:`~relaygate.providers.anthropic.mapping`):

- the message's ``reasoning_content`` (DeepSeek, vLLM and other OpenAI-compatible servers) is a
  ``thinking`` block, its text a ``text`` block, its tool calls ``tool_use`` blocks, in that order;
- ``finish_reason`` is the ``stop_reason`` (``stop`` -> ``end_turn``, ``length`` -> ``max_tokens``,
  ``tool_calls`` -> ``tool_use``, ``content_filter`` -> ``refusal``); a chat answer does not say which stop
  sequence ended it, so ``stop_sequence`` is ``null``;
- usage is Anthropic's: ``input_tokens`` without the cache reads and writes, which are
  ``cache_read_input_tokens`` and ``cache_creation_input_tokens``.

Errors: ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with Anthropic's type for the
status (:func:`~relaygate.providers.anthropic.mapping.error_type`): 400 ``invalid_request_error``, 401
``authentication_error``, 403 ``permission_error``, 404 ``not_found_error``, 413 ``request_too_large``,
429 ``rate_limit_error``, 500 and other 5xx ``api_error``, 504 ``timeout_error``; an overloaded upstream
or a gateway with every target cooling down is Anthropic's 529 ``overloaded_error``.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.ids import new_hex
from relaygate.providers.anthropic.mapping import anthropic_usage, error_type, stop_reason

__all__ = ["error_body", "message", "message_id", "obj", "parsed_arguments", "status_of", "usage"]

JSON = dict[str, Any]


def message_id(chat_id: Any) -> str:
    """The message id for a canonical answer's id (Anthropic's ``msg_`` ids are kept)."""
    if isinstance(chat_id, str) and chat_id:
        return chat_id if chat_id.startswith("msg_") else f"msg_{chat_id}"
    return f"msg_{new_hex()[:24]}"


def message(body: JSON, *, model: str) -> JSON:
    """Anthropic's ``message`` for the canonical whole answer ``body``; ``model`` when the answer names none."""
    choices = body.get("choices")
    choice = obj(choices[0]) if isinstance(choices, list) and choices else {}
    reply = obj(choice.get("message"))
    content: list[JSON] = []
    reasoning = reply.get("reasoning_content") or reply.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = reply.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = reply.get("refusal")
    if isinstance(refusal, str) and refusal and not text:
        content.append({"type": "text", "text": refusal})
    for call in reply.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{new_hex()[:24]}",
                "name": function.get("name") or "",
                "input": parsed_arguments(function.get("arguments")),
            }
        )
    return {
        "id": message_id(body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": usage(body.get("usage")),
    }


def obj(value: Any) -> JSON:
    """``value`` when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def usage(chat_usage: Any) -> JSON:
    """Anthropic's usage for the canonical one, with the gateway's price of the call when it has one."""
    out = anthropic_usage(chat_usage if isinstance(chat_usage, dict) else None)
    cost = chat_usage.get("cost") if isinstance(chat_usage, dict) else None
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        out["cost"] = cost  # as the usage object of a chat answer says it (LangDB's usage.cost)
    return out


def parsed_arguments(arguments: Any) -> JSON:
    """A tool call's arguments as the ``input`` object (arguments that are no JSON object stay readable)."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def error_body(status: int, error: JSON, request_id: str | None) -> tuple[int, bytes]:
    """Anthropic's status and error body for the OpenAI-shaped ``error`` object of a ``status`` answer."""
    status, kind = error_type(status, error.get("code"))
    text = str(error.get("message") or "The request failed.")
    param = error.get("param")
    if isinstance(param, str) and param and param not in text:
        text = f"{param}: {text}"
    body: JSON = {"type": "error", "error": {"type": kind, "message": text}}
    if request_id:
        body["request_id"] = request_id
    return status, orjson.dumps(body)


# OpenAI error types (relaygate.errors, the adapters) -> the status an answer of that type has.
TYPE_STATUSES = {
    "invalid_request_error": 400,
    "permission_error": 403,
    "rate_limit_error": 429,
    "requests": 429,
    "tokens": 429,
    "insufficient_quota": 429,
    "timeout_error": 504,
}


def status_of(error: JSON) -> int:
    """The status of a mid-stream error, which has none of its own: its type's (500 for a server's)."""
    return TYPE_STATUSES.get(str(error.get("type")), 500)
