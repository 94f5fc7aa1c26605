"""Two more behaviours of the fake OpenAI server (tests/fakes/openai_server.py).

``agent`` (chat completions): a model that plays an agent. With ``tools`` and no tool result after the
last user message, it calls the first tool (``tool_choice`` may name another) with arguments made from its
parameters' schema (a string property is ``"Paris"``, a number ``1``, a boolean ``true``); after tool
results it answers ``"The tool said: <result>"`` (several joined by `` | ``). ``agent-forever`` never stops
calling; ``agent-parallel`` calls the first two tools in one answer. With ``response_format``
``json_schema`` it answers a JSON object made from the schema the same way, and with ``json_object``
``{"answer": 42}``.

``POST /v1/responses`` (the Responses API itself, for native pass-through): a response whose message is
:data:`RESPONSES_REPLY`, as JSON or as its event stream; model ``search`` adds a ``web_search_call`` item
first (a built-in tool only the Responses API has); ``status-<code>`` is that status with an OpenAI error;
``html`` a 200 whose body is an HTML page.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

JSON = dict[str, Any]

RESPONSES_REPLY = "Hello from the Responses API"
RESPONSES_USAGE = {
    "input_tokens": 9,
    "input_tokens_details": {"cached_tokens": 2},
    "output_tokens": 6,
    "output_tokens_details": {"reasoning_tokens": 1},
    "total_tokens": 15,
}


def value_for(schema: Any) -> Any:
    """A value that fits ``schema`` (enough of JSON Schema for tools and structured outputs in tests)."""
    if not isinstance(schema, dict):
        return "Paris"
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "anyOf" in schema and schema["anyOf"]:
        return value_for(schema["anyOf"][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        return {name: value_for(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [value_for(schema.get("items"))]
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    return "Paris"


def _called(messages: list[JSON]) -> int:
    """How many tool calls the last assistant message made (its results are the last messages)."""
    assistants = [m for m in messages if m.get("role") == "assistant"]
    return max(1, len(assistants[-1].get("tool_calls") or ())) if assistants else 1


def _call(function: JSON, call_id: str) -> JSON:
    arguments = orjson.dumps(value_for(function.get("parameters") or {})).decode()
    return {"id": call_id, "type": "function", "function": {"name": function["name"], "arguments": arguments}}


def agent_message(data: JSON) -> tuple[JSON, str]:
    """The assistant message of the ``agent`` model, and its finish reason. ``agent-forever`` calls a tool
    whatever the results say; ``agent-parallel`` calls the first two tools at once."""
    messages = data.get("messages") or []
    last = messages[-1] if messages else {}
    tools = [tool for tool in data.get("tools") or () if isinstance(tool, dict) and tool.get("function")]
    model = str(data.get("model", ""))
    if last.get("role") == "tool" and not model.startswith("agent-forever"):
        results = [m.get("content") for m in messages if m.get("role") == "tool"]
        said = " | ".join(str(result) for result in results[-_called(messages) :])
        return {"role": "assistant", "content": f"The tool said: {said}"}, "stop"
    if tools and model.startswith("agent-parallel") and data.get("tool_choice") != "none":
        calls = [_call(tool["function"], f"call_{i}") for i, tool in enumerate(tools[:2])]
        return {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"
    if tools and data.get("tool_choice") != "none":
        function = tools[0]["function"]
        choice = data.get("tool_choice")
        if isinstance(choice, dict):
            named = (choice.get("function") or {}).get("name")
            function = next((t["function"] for t in tools if t["function"].get("name") == named), function)
        arguments = orjson.dumps(value_for(function.get("parameters") or {})).decode()
        call = {
            "id": f"call_{function['name']}",
            "type": "function",
            "function": {"name": function["name"], "arguments": arguments},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    response_format = data.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        content = orjson.dumps(value_for(response_format["json_schema"].get("schema"))).decode()
    elif response_format.get("type") == "json_object":
        content = '{"answer": 42}'
    else:
        content = "Done."
    return {"role": "assistant", "content": content}, "stop"


def agent_chunks(data: JSON) -> list[JSON]:
    """The deltas of the ``agent`` model's stream (each a choice without its index), the last with a finish."""
    message, finish = agent_message(data)
    deltas: list[JSON] = [{"delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    for index, call in enumerate(message.get("tool_calls") or ()):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        deltas.append({"delta": {"tool_calls": [head]}, "finish_reason": None})
        arguments = call["function"]["arguments"]
        for at in range(0, len(arguments), 4):
            piece = {"index": index, "function": {"arguments": arguments[at : at + 4]}}
            deltas.append({"delta": {"tool_calls": [piece]}, "finish_reason": None})
    content = message.get("content")
    if content:
        for at in range(0, len(content), 6):
            deltas.append({"delta": {"content": content[at : at + 6]}, "finish_reason": None})
    deltas.append({"delta": {}, "finish_reason": finish})
    return deltas


def responses_answer(data: JSON) -> JSON:
    """The whole response of ``POST /v1/responses``."""
    output: list[JSON] = []
    if data.get("model") == "search":
        output.append(
            {
                "type": "web_search_call",
                "id": "ws_fake",
                "status": "completed",
                "action": {"type": "search", "query": "x"},
            }
        )
    text = {"type": "output_text", "text": RESPONSES_REPLY, "annotations": [], "logprobs": []}
    output.append({"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant", "content": [text]})
    return {
        "id": f"resp_fake_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "model": data.get("model"),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": data.get("previous_response_id"),
        "tool_choice": "auto",
        "tools": data.get("tools") or [],
        "usage": RESPONSES_USAGE,
        "metadata": {},
    }


def responses_events(data: JSON) -> list[tuple[str, JSON]]:
    """The event stream of ``POST /v1/responses`` with ``stream: true``."""
    final = responses_answer(data)
    start = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, JSON]] = [
        ("response.created", {"response": start}),
        ("response.in_progress", {"response": start}),
    ]
    for index, item in enumerate(final["output"]):
        if item["type"] != "message":
            events.append(("response.output_item.added", {"output_index": index, "item": item}))
            events.append(("response.output_item.done", {"output_index": index, "item": item}))
            continue
        where = {"item_id": item["id"], "output_index": index}
        events.append(
            (
                "response.output_item.added",
                {"output_index": index, "item": {**item, "content": [], "status": "in_progress"}},
            )
        )
        events.append(
            (
                "response.content_part.added",
                {**where, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
            )
        )
        for word in RESPONSES_REPLY.split(" "):
            events.append(
                ("response.output_text.delta", {**where, "content_index": 0, "delta": word + " ", "logprobs": []})
            )
        events.append(
            ("response.output_text.done", {**where, "content_index": 0, "text": RESPONSES_REPLY, "logprobs": []})
        )
        events.append(("response.content_part.done", {**where, "content_index": 0, "part": item["content"][0]}))
        events.append(("response.output_item.done", {"output_index": index, "item": item}))
    events.append(("response.completed", {"response": final}))
    return [(name, {"type": name, **payload, "sequence_number": n}) for n, (name, payload) in enumerate(events)]
