"""An Anthropic Messages request as the canonical Chat Completions request.

The inverse of the Anthropic adapter's :mod:`~relaygate.providers.anthropic.request`, reading the same
tables (:mod:`~relaygate.providers.anthropic.mapping`); the conversation itself is :mod:`.content`'s.

| Messages API | Chat Completions |
| --- | --- |
| ``max_tokens`` | ``max_completion_tokens`` |
| ``stop_sequences``, ``temperature``, ``top_p`` | ``stop``, ``temperature``, ``top_p`` |
| ``top_k`` | ``top_k``, for Anthropic models only (other APIs refuse it) |
| ``metadata.user_id`` | ``user``, and the ledger's user (``extra.user.id``) |
| ``tools`` (custom tools) | function tools (``cache_control`` for Anthropic models only) |
| ``tool_choice`` ``auto`` / ``any`` / ``tool`` / ``none`` | ``auto`` / ``required`` / a function / ``none`` |
| ``disable_parallel_tool_use`` | ``parallel_tool_calls: false`` |
| ``thinking`` ``enabled`` with ``budget_tokens`` | ``reasoning_effort`` (:data:`EFFORT_BUDGETS`) |
| ``output_config.format`` (``json_schema``) | ``response_format`` ``json_schema`` |
| ``stream`` | ``stream`` with ``stream_options.include_usage`` |
| ``extra``, ``router`` | the gateway's own fields, as on chat calls |

Dropped, since a chat call has no counterpart and leaving them out changes no answer's meaning:
``thinking`` ``adaptive`` or ``disabled``, ``output_config.effort``, ``context_management`` and
``service_tier``. Server tools (``web_search_*``, ``bash_*``, ...), ``mcp_servers`` and ``container``
need Anthropic itself (:class:`~.content.Untranslatable`).
"""

from __future__ import annotations

from typing import Any

from relaygate.dialects.messages.content import Untranslatable, chat_messages, system_text
from relaygate.errors import InvalidRequestError
from relaygate.providers.anthropic.mapping import TOOL_CHOICES
from relaygate.providers.params import invalid

__all__ = ["EFFORT_BUDGETS", "chat_request", "check_request", "reasoning_effort"]

JSON = dict[str, Any]

# A thinking budget below each bound asks for that effort; larger ones for "high".
EFFORT_BUDGETS = (("low", 4096), ("medium", 16384))
NATIVE_FIELDS = {"mcp_servers": "MCP servers (mcp_servers)", "container": "A container"}
TOOL_CHOICE_TYPES = frozenset({*TOOL_CHOICES.values(), "tool"})


def check_request(body: JSON) -> None:
    """What every Messages request needs, whichever way it goes: a model and ``max_tokens``."""
    model = body.get("model")
    if model is None:
        raise InvalidRequestError("model: Field required", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise invalid("model", "expected a non-empty string")
    limit = body.get("max_tokens")
    if limit is None:
        raise InvalidRequestError("max_tokens: Field required", param="max_tokens", code="missing_required_parameter")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise invalid("max_tokens", "expected an integer of at least 1")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise invalid("stream", "expected a boolean")


def chat_request(body: JSON, *, anthropic: bool, untranslatable: list[Untranslatable]) -> JSON:
    """The canonical request for a checked Messages request; ``anthropic`` when every target the model may
    reach is an Anthropic provider (fields only its adapter reads are kept then)."""
    messages = chat_messages(body.get("messages"), anthropic, untranslatable)
    system = system_text(body.get("system"), anthropic)
    out: JSON = {"model": body["model"], "messages": [system, *messages] if system else messages}
    out["max_completion_tokens"] = body["max_tokens"]
    _sampling(body, out, anthropic)
    _user(body, out)
    _tools(body, out, anthropic, untranslatable)
    effort = reasoning_effort(body.get("thinking"))
    if effort is not None:
        out["reasoning_effort"] = effort
    _response_format(body, out)
    for key, what in NATIVE_FIELDS.items():
        if body.get(key):
            untranslatable.append(Untranslatable(key, what))
    if body.get("router") is not None:
        out["router"] = body["router"]
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _sampling(body: JSON, out: JSON, anthropic: bool) -> None:
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
            raise invalid("stop_sequences", "expected an array of strings")
        if stop:
            out["stop"] = stop
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise invalid(key, "expected a number between 0 and 1")
        out[key] = value
    top_k = body.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise invalid("top_k", "expected a non-negative integer")
        if anthropic:
            out["top_k"] = top_k


def _user(body: JSON, out: JSON) -> None:
    """``metadata.user_id`` is the provider's ``user`` and the ledger's; ``extra`` (the gateway's) is kept."""
    extra = body.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise invalid("extra", "expected an object")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("metadata", "expected an object")
    user_id = (metadata or {}).get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise invalid("metadata.user_id", "expected a string")
    if user_id:
        out["user"] = user_id
        if not isinstance((extra or {}).get("user"), dict):
            extra = {**(extra or {}), "user": {"id": user_id}}
    if extra is not None:
        out["extra"] = extra


def _tools(body: JSON, out: JSON, anthropic: bool, untranslatable: list[Untranslatable]) -> None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("tools", "expected an array")
    functions: list[JSON] = []
    for index, tool in enumerate(tools or ()):
        where = f"tools.{index}"
        if not isinstance(tool, dict):
            raise invalid(where, "expected a tool object")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            untranslatable.append(Untranslatable(f"{where}.type", f"The server tool '{kind}'"))
            continue
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise invalid(f"{where}.name", "expected a non-empty string")
        if not isinstance(schema, dict):
            raise invalid(f"{where}.input_schema", "expected a JSON schema object")
        function: JSON = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str) and tool["description"]:
            function["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        entry: JSON = {"type": "function", "function": function}
        if anthropic and isinstance(tool.get("cache_control"), dict):
            entry["cache_control"] = tool["cache_control"]
        functions.append(entry)
    if functions:
        out["tools"] = functions
    choice = body.get("tool_choice")
    if choice is None:
        return
    if (
        not isinstance(choice, dict)
        or not isinstance(choice.get("type"), str)
        or choice["type"] not in TOOL_CHOICE_TYPES
    ):
        raise invalid("tool_choice.type", "expected 'auto', 'any', 'tool' or 'none'")
    if choice["type"] == "tool" and not (isinstance(choice.get("name"), str) and choice["name"]):
        raise invalid("tool_choice.name", "expected the name of a tool")
    parallel = choice.get("disable_parallel_tool_use")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid("tool_choice.disable_parallel_tool_use", "expected a boolean")
    if not functions:
        return  # nothing to choose from (or only server tools, refused above when translated)
    if choice["type"] == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        out["tool_choice"] = next(key for key, value in TOOL_CHOICES.items() if value == choice["type"])
    if parallel and choice["type"] != "none":
        out["parallel_tool_calls"] = False


def reasoning_effort(thinking: Any) -> str | None:
    """The ``reasoning_effort`` of ``thinking`` ``{"type": "enabled", "budget_tokens": n}``; else ``None``."""
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str):
        raise invalid("thinking", "expected an object with a type")
    budget = thinking.get("budget_tokens")
    if thinking["type"] != "enabled":
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise invalid("thinking.budget_tokens", "expected a positive integer")
    return next((effort for effort, below in EFFORT_BUDGETS if budget < below), "high")


def _response_format(body: JSON, out: JSON) -> None:
    """``output_config.format`` (or the older ``output_format``) of type ``json_schema``."""
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise invalid("output_config", "expected an object")
    where, spec = "output_config.format", (config or {}).get("format")
    if spec is None:
        where, spec = "output_format", body.get("output_format")
    if spec is None:
        return
    if not isinstance(spec, dict) or spec.get("type") != "json_schema" or not isinstance(spec.get("schema"), dict):
        raise invalid(where, "expected {'type': 'json_schema', 'schema': {...}}")
    out["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": spec["schema"], "strict": True},
    }
