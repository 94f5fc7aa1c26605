"""Validation of the OpenAI request parameters that adapters translate for another provider.

The pass-through adapter leaves parameters to the upstream; an adapter that rewrites a request must
read them itself, and bad client input is a 400 ``invalid_value`` naming the parameter, before anything
is sent. These helpers check what the OpenAI API allows; what a provider adds (Anthropic dropping
whitespace-only stop sequences, Gemini's at most five) stays in its adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from relaygate.errors import InvalidRequestError

__all__ = [
    "FunctionTool",
    "function_tools",
    "invalid",
    "invalid_value",
    "max_tokens",
    "named_function",
    "optional_int",
    "optional_number",
    "stop_sequences",
    "tool_arguments",
]

JSON = dict[str, Any]


def invalid_value(message: str, param: str | None) -> InvalidRequestError:
    """A 400 ``invalid_value`` error with ``message`` as it is."""
    return InvalidRequestError(message, param=param, code="invalid_value")


def invalid(param: str, reason: str) -> InvalidRequestError:
    """A 400 ``invalid_value`` error in the gateway's wording: ``Invalid value for '<param>': <reason>.``"""
    return invalid_value(f"Invalid value for '{param}': {reason}.", param)


def optional_int(body: JSON, key: str, *, minimum: int | None = None) -> int | None:
    """``body[key]``, checked to be an integer of at least ``minimum``; ``None`` when it is absent."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        raise invalid(key, _expected_integer(minimum))
    return value


def _expected_integer(minimum: int | None) -> str:
    if minimum is None:
        return "expected an integer"
    return "expected a positive integer" if minimum == 1 else f"expected an integer of at least {minimum}"


def optional_number(body: JSON, key: str, *, bounds: tuple[float, float] | None = None) -> float | None:
    """``body[key]`` as given (an int stays an int), checked to be a number within ``bounds``."""
    value = body.get(key)
    if value is None:
        return None
    if bounds is None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(key, "expected a number")
    elif isinstance(value, bool) or not isinstance(value, int | float) or not bounds[0] <= value <= bounds[1]:
        raise invalid(key, f"expected a number between {bounds[0]:g} and {bounds[1]:g}")
    return value


def max_tokens(body: JSON) -> int | None:
    """``max_completion_tokens``, else the older ``max_tokens``: the most tokens the answer may have."""
    value = optional_int(body, "max_completion_tokens", minimum=1)
    return value if value is not None else optional_int(body, "max_tokens", minimum=1)


def stop_sequences(stop: Any) -> list[str]:
    """The ``stop`` parameter (a string or an array of strings) as a list; empty when it is absent."""
    if stop is None:
        return []
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise invalid("stop", "expected a string or an array of strings")
    return items


def named_function(holder: Any, where: str) -> tuple[JSON, str]:
    """The ``function`` object of a tool, tool call or tool choice at ``where``, and its name."""
    function = holder.get("function") if isinstance(holder, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(name, str) or not name:
        raise invalid(f"{where}.function.name", "expected a non-empty string")
    return function, name


def tool_arguments(arguments: Any, param: str) -> JSON:
    """A tool call's ``arguments`` (OpenAI sends a JSON-encoded string) as an object; empty means none."""
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    value = arguments
    if isinstance(arguments, str):
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise invalid(param, "the arguments are not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid(param, "the arguments must be a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """One entry of ``tools``, checked."""

    name: str
    description: str | None  # None when absent or empty
    parameters: JSON | None  # the JSON Schema of the arguments, None when absent
    tool: JSON  # the whole OpenAI tool, for fields that only some providers read (cache_control)


def function_tools(tools: Any, models: str) -> list[FunctionTool]:
    """The ``tools`` of a request to ``models`` (e.g. "Gemini models"), which take function tools only."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools", "expected an array")
    out: list[FunctionTool] = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise invalid(f"{where}.type", f"{models} take tools of type 'function' only")
        function, name = named_function(tool, where)
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid(f"{where}.function.parameters", "expected a JSON schema object")
        description = function.get("description")
        if not isinstance(description, str) or not description:
            description = None
        out.append(FunctionTool(name, description, parameters, tool))
    return out
