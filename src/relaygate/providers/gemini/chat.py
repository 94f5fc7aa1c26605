"""An OpenAI chat request as a Gemini ``generateContent`` body: generation config and tools.

The conversation itself is :mod:`.contents`'s. Where Gemini and OpenAI do not line up:

- ``parallel_tool_calls: false`` is dropped. Gemini has no such switch, and a 400 would break the
  agent frameworks that send the flag by default; the calls still arrive as a valid ``tool_calls`` list.
- Function parameters go out as ``parametersJsonSchema`` and ``json_schema`` output as
  ``responseJsonSchema`` (Gemini 2.5+). Both take full JSON Schema (``$ref``, ``anyOf``,
  ``additionalProperties``), so client schemas pass unchanged instead of being cut to OpenAPI's subset.
- Gemini takes at most five stop sequences; more is a 400, and empty ones are left out.
"""

from __future__ import annotations

from typing import Any

from relaygate.providers import params
from relaygate.providers.gemini.contents import gemini_contents
from relaygate.providers.params import function_tools, invalid_value, max_tokens, optional_int, optional_number

__all__ = ["chat_request", "function_calling_config", "function_declarations", "generation_config", "stop_sequences"]

MAX_STOP_SEQUENCES = 5


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The ``generateContent`` body for an OpenAI chat completion request."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise invalid_value("'messages' must be an array of messages.", "messages")
    system, contents = gemini_contents(messages)
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": system}]}
    config = generation_config(body)
    if config:
        out["generationConfig"] = config
    declarations = function_declarations(body.get("tools"))
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        tool_config = function_calling_config(body.get("tool_choice"))
        if tool_config is not None:
            out["toolConfig"] = {"functionCallingConfig": tool_config}
    return out


def generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limit = max_tokens(body)
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = stop_sequences(body.get("stop"))
    if stop:
        config["stopSequences"] = stop
    for key, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = optional_number(body, key)
        if value is not None:
            config[target] = value
    seed = optional_int(body, "seed")
    if seed is not None:
        config["seed"] = seed
    n = optional_int(body, "n", minimum=1)
    if n is not None and n > 1:
        config["candidateCount"] = n
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise invalid_value("'logprobs' must be a boolean.", "logprobs")
    if logprobs:
        config["responseLogprobs"] = True
        top = optional_int(body, "top_logprobs", minimum=0)
        if top is not None:
            config["logprobs"] = top
    config.update(response_format_config(body.get("response_format")))
    return config


def stop_sequences(stop: Any) -> list[str]:
    sequences = params.stop_sequences(stop)
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise invalid_value(f"Gemini takes at most {MAX_STOP_SEQUENCES} stop sequences; got {len(sequences)}.", "stop")
    return [item for item in sequences if item]


def response_format_config(response_format: Any) -> dict[str, Any]:
    if response_format is None:
        return {}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise invalid_value("'json_schema' must be an object.", "response_format.json_schema")
        schema = spec.get("schema")
        if schema is None:
            return {"responseMimeType": "application/json"}
        if not isinstance(schema, dict):
            raise invalid_value("'json_schema.schema' must be an object.", "response_format.json_schema.schema")
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise invalid_value("'response_format.type' must be text, json_object or json_schema.", "response_format.type")


def function_declarations(tools: Any) -> list[dict[str, Any]]:
    declarations: list[dict[str, Any]] = []
    for tool in function_tools(tools, "Gemini models"):
        declaration: dict[str, Any] = {"name": tool.name}  # "strict" has no Gemini counterpart and is left out
        if tool.description is not None:
            declaration["description"] = tool.description
        if tool.parameters:
            declaration["parametersJsonSchema"] = tool.parameters
        declarations.append(declaration)
    return declarations


def function_calling_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    modes = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
    if isinstance(choice, str) and choice in modes:
        return {"mode": modes[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise invalid_value(
        '\'tool_choice\' must be auto, required, none or {"type": "function", "function": {"name": ...}}.',
        "tool_choice",
    )
