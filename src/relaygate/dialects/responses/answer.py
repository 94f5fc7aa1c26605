"""Whole answers: the canonical ``chat.completion`` as a Responses API ``response`` object, and back.

:class:`Shape` holds what a response says about its request (the echoed settings, its id and time) and
builds response objects: :meth:`Shape.response` from a canonical answer, :meth:`Shape.skeleton` for a
stream's first events. :func:`chat_completion` goes the other way, for a provider that answered in the
Responses API itself: the context records the canonical answer for the ledger, limits and spans.

Finish reasons: ``length`` is an ``incomplete`` response (``max_output_tokens``), ``content_filter`` an
``incomplete`` one (``content_filter``); any other is ``completed``. A ``reasoning_content`` (or
``reasoning``) text that some OpenAI-compatible servers add to the message becomes a ``reasoning`` item
with one summary part.
"""

from __future__ import annotations

from typing import Any

from relaygate.ids import new_hex

__all__ = ["Shape", "chat_completion", "item_id", "obj", "output_as_input", "responses_usage"]

JSON = dict[str, Any]

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def obj(value: Any) -> JSON:
    """``value`` when it is a JSON object, else an empty one: fields of what a client or provider sent."""
    return value if isinstance(value, dict) else {}


def item_id(prefix: str) -> str:
    """A new id of an item (``msg``, ``fc``, ``rs``) or response (``resp``)."""
    return f"{prefix}_{new_hex()}"


class Shape:
    """The parts of a response that come from its request; see the module docstring."""

    __slots__ = ("created_at", "id", "request")

    def __init__(self, request: JSON, response_id: str, created_at: int) -> None:
        self.request = request
        self.id = response_id
        self.created_at = created_at

    def skeleton(self, model: str, status: str = "in_progress") -> JSON:
        request = self.request
        reasoning = obj(request.get("reasoning"))
        text = obj(request.get("text"))
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "max_tool_calls": request.get("max_tool_calls"),
            "model": model,
            "output": [],
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": request.get("service_tier", "default"),
            "store": request.get("store", True),
            "temperature": request.get("temperature", 1.0),
            "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [],
            "top_p": request.get("top_p", 1.0),
            "truncation": request.get("truncation", "disabled"),
            "usage": None,
            "user": request.get("user"),
            "metadata": request.get("metadata") or {},
        }

    def finished(self, model: str, output: list[JSON], finish: str | None, usage: JSON | None) -> JSON:
        """The response once its output is known: its status from the canonical finish reason."""
        incomplete = INCOMPLETE.get(finish or "")
        response = self.skeleton(model, "incomplete" if incomplete else "completed")
        if incomplete:
            response["incomplete_details"] = {"reason": incomplete}
        response["output"] = output
        response["usage"] = responses_usage(usage) if usage else None
        return response

    def failed(self, model: str, output: list[JSON], error: JSON) -> JSON:
        response = self.skeleton(model, "failed")
        response["output"] = output
        code = error.get("code") or error.get("type") or "server_error"
        response["error"] = {"code": code, "message": str(error.get("message") or "")}
        return response

    def response(self, completion: JSON) -> JSON:
        """The response object for the canonical whole answer ``completion``."""
        choices = completion.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = obj(choice.get("message"))
        finish = choice.get("finish_reason")
        status = "incomplete" if finish in INCOMPLETE else "completed"
        model = completion.get("model") or self.request.get("model") or ""
        return self.finished(str(model), output_items(message, status), finish, completion.get("usage"))


def output_items(message: JSON, status: str = "completed") -> list[JSON]:
    """The output items of a canonical assistant message."""
    items: list[JSON] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        summary = [{"type": "summary_text", "text": reasoning}]
        items.append({"type": "reasoning", "id": item_id("rs"), "summary": summary})
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
    parts: list[JSON] = []
    if isinstance(content, str) and (content or not calls):
        parts.append(output_text(content))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        items.append({"type": "message", "id": item_id("msg"), "status": status, "role": "assistant", "content": parts})
    for call in calls:
        function = obj(call.get("function"))
        items.append(
            {
                "type": "function_call",
                "id": item_id("fc"),
                "call_id": call.get("id") or item_id("call"),
                "name": function.get("name") or "",
                "arguments": function.get("arguments") or "",
                "status": "completed",
            }
        )
    return items


def output_text(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def responses_usage(usage: JSON) -> JSON:
    """Chat usage in the Responses API's terms (the gateway's ``cost`` kept)."""
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    out: JSON = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": prompt_details.get("cached_tokens") or 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": completion_details.get("reasoning_tokens") or 0},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }
    if usage.get("cost") is not None:
        out["cost"] = usage["cost"]
    return out


def chat_usage(usage: JSON) -> JSON:
    """Responses API usage as chat usage."""
    prompt = usage.get("input_tokens") or 0
    completion = usage.get("output_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0},
        "completion_tokens_details": {
            "reasoning_tokens": (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
        },
    }


def chat_completion(response: JSON) -> JSON:
    """The canonical ``chat.completion`` of a response object (from a provider serving the Responses API)."""
    texts: list[str] = []
    calls: list[JSON] = []
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts.extend(
                part.get("text", "")
                for part in item.get("content") or ()
                if isinstance(part, dict) and part.get("type") == "output_text"
            )
        elif item.get("type") == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments") or ""}
            calls.append({"id": item.get("call_id"), "type": "function", "function": function})
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    reason = (response.get("incomplete_details") or {}).get("reason")
    finish = "length" if reason == "max_output_tokens" else reason if reason else "tool_calls" if calls else "stop"
    completion: JSON = {
        "id": response.get("id"),
        "object": "chat.completion",
        "created": int(response.get("created_at") or 0),
        "model": response.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if isinstance(response.get("usage"), dict):
        completion["usage"] = chat_usage(response["usage"])
    return completion


def output_as_input(output: list[Any]) -> list[JSON]:
    """A stored response's output items as input items of the next turn (``previous_response_id``)."""
    items = []
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            content = [part for part in item.get("content") or () if isinstance(part, dict)]
            items.append({"type": "message", "role": "assistant", "id": item.get("id"), "content": content})
        else:
            items.append(item)
    return items
