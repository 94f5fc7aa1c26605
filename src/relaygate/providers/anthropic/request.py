"""An OpenAI chat request as an Anthropic Messages request: parameters, tools and response format.

The mapping follows ``reference/providers.md`` section 1 (the conversation itself is
:mod:`.conversation`'s); where it offers a choice:

- ``max_tokens`` is ``max_completion_tokens`` ?? ``max_tokens`` ?? the provider's ``default_max_tokens``;
  ``temperature`` is clamped to [0, 1] and ``top_p`` is dropped when both are set; whitespace-only stop
  sequences are dropped; ``user`` goes to ``metadata.user_id``. ``seed``, the penalties, ``logit_bias``
  and ``logprobs`` have no Anthropic counterpart and are dropped. ``n`` other than 1 is a 400.
- A history holding tool calls in a request without ``tools`` declares the tools named in the history
  with ``tool_choice: none``: Anthropic refuses tool blocks when no tools are defined.
- ``response_format`` ``json_schema`` uses the native ``output_config.format``. ``json_object`` has no
  native counterpart (structured outputs need a closed schema), so it is emulated with a forced tool
  whose input comes back as the message content with ``finish_reason: stop``; since it takes over
  ``tool_choice`` it cannot be combined with the client's own tools (400).
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import InvalidRequestError
from relaygate.providers.anthropic.conversation import conversation
from relaygate.providers.anthropic.mapping import TOOL_CHOICES
from relaygate.providers.params import (
    function_tools,
    invalid,
    max_tokens,
    named_function,
    optional_int,
    optional_number,
    stop_sequences,
)

__all__ = ["messages_request"]

JSON = dict[str, Any]

# The tool that stands in for response_format json_object (see the module docstring).
JSON_TOOL = "json_object_response"
JSON_TOOL_SCHEMA: JSON = {"type": "object", "additionalProperties": True}
EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}


def messages_request(body: dict[str, Any], model: str, *, stream: bool, default_max_tokens: int) -> JSON:
    """The Anthropic Messages request for an OpenAI chat request; bad client input is a 400."""
    n = optional_int(body, "n", minimum=1)
    if n is not None and n > 1:
        raise InvalidRequestError(
            "Anthropic models return one choice per request: 'n' must be 1. Send several requests instead.",
            param="n",
            code="unsupported_value",
        )
    system, messages, history_tools = conversation(body["messages"])
    limit = max_tokens(body)
    out: JSON = {"model": model, "max_tokens": default_max_tokens if limit is None else limit, "messages": messages}
    if system:
        out["system"] = system
    # Anthropic refuses stop sequences made only of whitespace.
    stop = [item for item in stop_sequences(body.get("stop")) if item.strip()]
    if stop:
        out["stop_sequences"] = stop
    temperature = optional_number(body, "temperature", bounds=(0, 2))
    top_p = optional_number(body, "top_p", bounds=(0, 1))
    if temperature is not None:
        # OpenAI's range is [0, 2], Anthropic's [0, 1].
        out["temperature"] = min(temperature, 1)
    elif top_p is not None:
        # Recent Claude models refuse both at once; temperature is the one clients mean.
        out["top_p"] = top_p
    top_k = optional_int(body, "top_k", minimum=1)
    if top_k is not None:
        out["top_k"] = top_k
    user = body.get("user", body.get("safety_identifier"))
    if user is not None:
        if not isinstance(user, str):
            raise invalid("user", "expected a string")
        out["metadata"] = {"user_id": user}
    _add_tools(out, body, history_tools)
    if stream:
        out["stream"] = True
    return out


def _add_tools(out: JSON, body: dict[str, Any], history_tools: list[str]) -> None:
    """``tools``, ``tool_choice`` and ``output_config`` from tools, tool_choice and response_format."""
    tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"), bool(tools))
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid("parallel_tool_calls", "expected a boolean")
    if parallel is False and tools and (choice is None or choice["type"] != "none"):
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if not tools and history_tools:
        tools = [{"name": name, "input_schema": EMPTY_SCHEMA} for name in history_tools]
        choice = {"type": "none"}

    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise invalid("response_format.json_schema.schema", "expected a JSON schema object")
            out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        elif kind == "json_object":
            if body.get("tools"):
                raise InvalidRequestError(
                    "response_format 'json_object' cannot be combined with tools for Anthropic models; "
                    "use response_format 'json_schema' instead.",
                    param="response_format",
                    code="unsupported_value",
                )
            json_tool = {
                "name": JSON_TOOL,
                "description": "Reply with a JSON object.",
                "input_schema": JSON_TOOL_SCHEMA,
            }
            tools = [*tools, json_tool]
            choice = {"type": "tool", "name": JSON_TOOL}
        elif kind != "text":
            raise invalid("response_format.type", "expected 'text', 'json_object' or 'json_schema'")
    if tools:
        out["tools"] = tools
        if choice is not None:
            out["tool_choice"] = choice


def _tools(tools: Any) -> list[JSON]:
    out: list[JSON] = []
    for tool in function_tools(tools, "Anthropic models"):
        parameters = tool.parameters
        if parameters is None:
            parameters = EMPTY_SCHEMA
        elif "type" not in parameters:
            parameters = {"type": "object", **parameters}  # Anthropic requires an object schema to say so
        entry: JSON = {"name": tool.name, "input_schema": parameters}
        if tool.description is not None:
            entry["description"] = tool.description
        if isinstance(tool.tool.get("cache_control"), dict):
            entry["cache_control"] = tool.tool["cache_control"]
        out.append(entry)
    return out


def _tool_choice(choice: Any, has_tools: bool) -> JSON | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        mapped: JSON = {"type": TOOL_CHOICES[choice]}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        mapped = {"type": "tool", "name": named_function(choice, "tool_choice")[1]}
    else:
        raise invalid("tool_choice", "expected 'auto', 'none', 'required' or a function to call")
    if not has_tools:
        if mapped["type"] in ("auto", "none"):
            return None  # nothing to choose from: the same as no choice
        raise invalid("tool_choice", "a tool is required but the request has no 'tools'")
    return mapped
