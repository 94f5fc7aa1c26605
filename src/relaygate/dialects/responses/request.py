"""A Responses API request as the canonical Chat Completions request.

:func:`input_items` checks ``input`` and gives it as a list of items (a string is one user message);
:func:`chat_request` builds the canonical request from the Responses request and the whole input (the
stored conversation of ``previous_response_id`` first, see :mod:`.state`). Every field is checked here
and a bad one is a 400 naming it as the Responses API does (``input[2].content[0].image_url``), so the
adapters' own checks, which name Chat Completions fields, rarely speak.

What has no counterpart in a chat call:

- ``instructions`` and ``developer`` messages become ``system`` messages (every adapter and
  OpenAI-compatible server takes those); ``reasoning`` items are dropped (a chat call cannot carry them);
- built-in tools (``web_search``, ``file_search``, ``computer_use_preview``, ``mcp``, ...), a
  ``tool_choice`` naming one, ``item_reference`` and built-in tool call items, ``prompt`` templates and
  ``input_file``/``input_image`` by ``file_id`` need a provider that serves the Responses API itself:
  they are noted as :class:`Untranslatable` and refused with a 400 only when the attempt is translated;
- ``store``, ``metadata``, ``include``, ``truncation`` and ``max_tool_calls`` stay with the gateway;
  ``background`` and ``conversation`` are refused (the gateway keeps state by ``previous_response_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relaygate.errors import InvalidRequestError
from relaygate.providers.params import invalid
from relaygate.requests import GATEWAY_FIELDS

__all__ = ["Untranslatable", "chat_request", "check_request", "input_items"]

JSON = dict[str, Any]

ROLES = frozenset({"user", "assistant", "system", "developer"})
# Items a chat call has a counterpart for; reasoning items are understood and dropped.
CHAT_ITEMS = frozenset({"message", "function_call", "function_call_output", "reasoning"})
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
UNSUPPORTED = {
    "background": "Background responses are not supported by the gateway; send the request without it.",
    "conversation": "Conversations are not supported by the gateway; chain responses with previous_response_id.",
}


@dataclass(frozen=True, slots=True)
class Untranslatable:
    """A part of the request only a provider serving the Responses API itself can take."""

    param: str
    what: str

    def error(self) -> InvalidRequestError:
        return InvalidRequestError(
            f"{self.what} needs a provider that serves the Responses API itself (a provider of kind openai with "
            "native_responses: true); this model's provider takes the request translated into a chat call.",
            param=self.param,
            code="unsupported_parameter",
        )


def check_request(body: JSON) -> None:
    """The top-level checks of a Responses request: the model, and what the gateway refuses."""
    model = body.get("model")
    if model is None:
        raise InvalidRequestError(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str) or not model:
        raise invalid("model", "expected a non-empty string")
    for key, message in UNSUPPORTED.items():
        if body.get(key) not in (None, False):
            raise InvalidRequestError(message, param=key, code="unsupported_parameter")
    for key in ("instructions", "previous_response_id", "user", "safety_identifier", "prompt_cache_key"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise invalid(key, "expected a string")
    for key in ("stream", "store", "parallel_tool_calls"):
        if body.get(key) is not None and not isinstance(body[key], bool):
            raise invalid(key, "expected a boolean")
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(value, str) for value in metadata.values())
    ):
        raise invalid("metadata", "expected an object of strings")


def input_items(value: Any, untranslatable: list[Untranslatable]) -> list[JSON]:
    """``input`` as a list of items, checked; what only a native provider takes goes to ``untranslatable``."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid("input", "expected a string or an array of input items")
    items = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise invalid(where, "expected an object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            _check_message(item, where, untranslatable)
            item = {**item, "type": "message"}
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise invalid(f"{where}.{key}", "expected a string")
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise invalid(f"{where}.call_id", "expected a string")
            output = item.get("output")
            if isinstance(output, list):
                _check_parts(output, f"{where}.output", "user", untranslatable)
            elif not isinstance(output, str):
                raise invalid(f"{where}.output", "expected a string or an array of content parts")
        elif not isinstance(kind, str):
            raise invalid(f"{where}.type", "expected the type of the item")
        elif kind not in CHAT_ITEMS:
            untranslatable.append(Untranslatable(f"{where}.type", f"An input item of type '{kind}'"))
        items.append(item)
    return items


def _check_message(item: JSON, where: str, untranslatable: list[Untranslatable]) -> None:
    role = item.get("role")
    if role not in ROLES:
        raise invalid(f"{where}.role", "expected 'user', 'assistant', 'system' or 'developer'")
    content = item.get("content")
    if isinstance(content, list):
        _check_parts(content, f"{where}.content", role, untranslatable)
    elif not isinstance(content, str):
        raise invalid(f"{where}.content", "expected a string or an array of content parts")


def _check_parts(parts: list[Any], where: str, role: str, untranslatable: list[Untranslatable]) -> None:
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(part, dict) or not isinstance(kind, str):
            raise invalid(f"{at}.type", "expected a content part with a type")
        if kind in ("input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise invalid(f"{at}.text", "expected a string")
        elif kind == "refusal":
            if not isinstance(part.get("refusal"), str):
                raise invalid(f"{at}.refusal", "expected a string")
        elif kind == "input_image":
            if role == "assistant":
                raise invalid(f"{at}.type", "an assistant message holds output_text and refusal parts only")
            if not isinstance(part.get("image_url"), str):
                if isinstance(part.get("file_id"), str):
                    untranslatable.append(Untranslatable(f"{at}.file_id", "An image by file_id"))
                else:
                    raise invalid(f"{at}.image_url", "expected a URL (http(s) or a data URL)")
        elif kind == "input_file":
            if not isinstance(part.get("file_data"), str) and not isinstance(part.get("file_url"), str):
                if isinstance(part.get("file_id"), str):
                    untranslatable.append(Untranslatable(f"{at}.file_id", "A file by file_id"))
                else:
                    raise invalid(f"{at}.file_data", "expected the file's data (a data URL or base64)")
        else:
            untranslatable.append(Untranslatable(f"{at}.type", f"A content part of type '{kind}'"))


def chat_request(body: JSON, items: list[JSON], untranslatable: list[Untranslatable]) -> JSON:
    """The canonical chat request for the Responses request ``body`` whose whole input is ``items``."""
    messages: list[JSON] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        _add_item(messages, item)
    if not any(message["role"] != "system" for message in messages):
        raise InvalidRequestError(
            "The request has no input: give 'input' (or 'previous_response_id' with new input).",
            param="input",
            code="missing_required_parameter",
        )
    out: JSON = {"model": body["model"], "messages": messages}
    tools = _tools(body.get("tools"), untranslatable)
    if tools:
        out["tools"] = tools
        if body.get("parallel_tool_calls") is not None:
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    choice = _tool_choice(body.get("tool_choice"), out, untranslatable)
    if choice is not None and tools:
        out["tool_choice"] = choice
    _text(body.get("text"), out)
    _numbers(body, out)
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise invalid("reasoning", "expected an object")
        effort = reasoning.get("effort")
        if effort is not None:
            if effort not in EFFORTS:
                raise invalid("reasoning.effort", f"expected one of {', '.join(sorted(EFFORTS))}")
            out["reasoning_effort"] = effort
    if body.get("prompt") is not None:
        untranslatable.append(Untranslatable("prompt", "A prompt template"))
    for key in ("user", "safety_identifier", "prompt_cache_key", "service_tier"):
        if body.get(key) is not None:
            out[key] = body[key]
    for key in GATEWAY_FIELDS:
        if key in body:
            out[key] = body[key]
    if body.get("stream"):
        out["stream"] = True
        # Usage is always asked for: response.completed carries it.
        out["stream_options"] = {"include_usage": True}
    return out


def _add_item(messages: list[JSON], item: JSON) -> None:
    kind = item.get("type")
    if kind == "message":
        role = item["role"]
        content = item["content"]
        if role == "developer":
            role = "system"
        if role in ("system", "assistant"):
            text, refusal = _text_of(content)
            message: JSON = {"role": role, "content": text}
            if refusal and role == "assistant":
                message["refusal"] = refusal
            messages.append(message)
        else:
            messages.append({"role": role, "content": _chat_parts(content)})
    elif kind == "function_call":
        function = {"name": item["name"], "arguments": item["arguments"]}
        call = {"id": item["call_id"], "type": "function", "function": function}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item["output"]
        content = output if isinstance(output, str) else _chat_parts(output)
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
    # reasoning items and items only a native provider takes have no chat counterpart


def _text_of(content: str | list[JSON]) -> tuple[str, str | None]:
    """The text of a system or assistant message, and an assistant's refusal."""
    if isinstance(content, str):
        return content, None
    texts = [part["text"] for part in content if part.get("type") in ("input_text", "output_text")]
    refusals = [part["refusal"] for part in content if part.get("type") == "refusal"]
    return "".join(texts), "".join(refusals) or None


def _chat_parts(content: str | list[JSON]) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    parts: list[JSON] = []
    for part in content:
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: JSON = {"url": part["image_url"]}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            file: JSON = {}
            data = part.get("file_data")
            if isinstance(data, str):
                file["file_data"] = data
            elif isinstance(part.get("file_url"), str):
                file["file_data"] = part["file_url"]
            if isinstance(part.get("filename"), str):
                file["filename"] = part["filename"]
            if file:
                parts.append({"type": "file", "file": file})
    return parts


def _tools(tools: Any, untranslatable: list[Untranslatable]) -> list[JSON]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools", "expected an array")
    out = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(kind, str):
            raise invalid(f"{where}.type", "expected a tool with a type")
        if kind != "function":
            untranslatable.append(Untranslatable(f"{where}.type", f"A built-in tool of type '{kind}'"))
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(f"{where}.name", "expected a non-empty string")
        function: JSON = {"name": name}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        parameters = tool.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise invalid(f"{where}.parameters", "expected a JSON schema object")
            function["parameters"] = parameters
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, out: JSON, untranslatable: list[Untranslatable]) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid("tool_choice.name", "expected a non-empty string")
        return {"type": "function", "function": {"name": name}}
    if kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        allowed = choice.get("tools")
        if mode not in ("auto", "required") or not isinstance(allowed, list):
            raise invalid("tool_choice", "expected 'mode' (auto or required) and 'tools'")
        names = {tool.get("name") for tool in allowed if isinstance(tool, dict) and tool.get("type") == "function"}
        if "tools" in out:
            out["tools"] = [tool for tool in out["tools"] if tool["function"]["name"] in names]
        return mode
    if isinstance(kind, str):
        untranslatable.append(Untranslatable("tool_choice", f"A tool_choice of type '{kind}'"))
        return None
    raise invalid("tool_choice", "expected 'auto', 'none', 'required' or a tool to call")


def _text(text: Any, out: JSON) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise invalid("text", "expected an object")
    verbosity = text.get("verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise invalid("text.verbosity", "expected 'low', 'medium' or 'high'")
        out["verbosity"] = verbosity
    spec = text.get("format")
    if spec is None:
        return
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema":
        raise invalid("text.format.type", "expected 'text', 'json_object' or 'json_schema'")
    assert isinstance(spec, dict)
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise invalid("text.format.name", "expected a non-empty string")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise invalid("text.format.schema", "expected a JSON schema object")
    json_schema: JSON = {"name": name, "schema": schema}
    if isinstance(spec.get("strict"), bool):
        json_schema["strict"] = spec["strict"]
    if isinstance(spec.get("description"), str):
        json_schema["description"] = spec["description"]
    out["response_format"] = {"type": "json_schema", "json_schema": json_schema}


def _numbers(body: JSON, out: JSON) -> None:
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise invalid("max_output_tokens", "expected a positive integer")
        out["max_completion_tokens"] = limit
    for key, high in (("temperature", 2), ("top_p", 1)):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
            raise invalid(key, f"expected a number between 0 and {high}")
        out[key] = value
    top_logprobs = body.get("top_logprobs")
    if top_logprobs is not None:
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or not 0 <= top_logprobs <= 20:
            raise invalid("top_logprobs", "expected an integer from 0 to 20")
        out["logprobs"] = True
        out["top_logprobs"] = top_logprobs
