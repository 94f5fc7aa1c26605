"""What the mock's chat model answers: a tool call, a JSON value or text.

- With ``tools`` and ``tool_choice`` ``auto`` (or none given), the last user message calls every tool it
  names (``get_weather``, "get weather") or asks for (the words of the tool's name other than verbs such as
  get or fetch: "the weather" asks for ``get_weather``), in parallel, in the order the text names them
  (only the first with ``parallel_tool_calls: false``). ``required`` forces a call (the named tools, else
  the first tool not yet called since the user spoke, else the first tool), a named ``tool_choice`` calls
  that tool, ``none`` calls none. The arguments are valid against the tool's parameters (values.py).
- After tool results, the answer is made from them: ``<tool> returned: <result>``, one line each.
- ``response_format`` ``json_schema`` answers a JSON value valid against the schema; ``json_object`` an
  object ``{"reply": ...}``. Otherwise the text is ``relaygate mock reply to: <the last user message>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from relaygate.providers.mock.values import Hints, value_for

__all__ = ["Answer", "ToolCall", "answer"]

JSON = dict[str, Any]
ECHO = "relaygate mock reply to: "
# Words of a tool's name that do not say what it is about ("get" in get_weather).
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
VERBS = frozenset("call do fetch find get list load lookup look query read retrieve run set tool up".split())


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def wire(self) -> JSON:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Answer:
    content: str | None
    tool_calls: list[ToolCall]


def answer(body: JSON) -> Answer:
    messages = [m for m in _list(body.get("messages")) if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    content = messages[last_user].get("content") if last_user >= 0 else ""
    user_text = text_of(content)
    turn = messages[last_user + 1 :]
    if not turn and not body.get("tools") and not body.get("response_format"):
        return Answer(ECHO + user_text, [])  # a plain chat: nothing to decide
    asked = _asked(content)
    results = _results(turn)
    tools = {
        str(tool["function"].get("name")): tool["function"]
        for tool in _list(body.get("tools"))
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name")
    }
    names = _calls(body, tools, asked, turn, results)
    if names:
        exclude = frozenset(word for name in tools for word in [name.lower(), *_words(name)])
        seed = orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)
        calls = []
        for index, name in enumerate(names):
            hints = Hints(asked, [text for _, text in results], exclude=exclude)
            arguments = value_for((tools.get(name) or {}).get("parameters") or {"type": "object"}, hints)
            digest = hashlib.sha256(seed + f"/{index}/{name}".encode()).hexdigest()[:24]
            calls.append(ToolCall(f"call_mock_{digest}", name, orjson.dumps(arguments).decode()))
        return Answer(None, calls)
    text = "\n".join(f"{name} returned: {result}" for name, result in results) if results else ECHO + user_text
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        spec = (response_format or {}).get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        hints = Hints(asked, [result for _, result in results])
        return Answer(json.dumps(value_for(schema or {"type": "object"}, hints)), [])
    if kind == "json_object":
        return Answer(json.dumps({"reply": text}), [])
    return Answer(text, [])


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text")
        )
    return ""


def _asked(content: Any) -> str:
    """The user's own words in a message: its last text part, without the ``<system-reminder>`` blocks that
    coding agents (Claude Code) add, so that the tools their context lists are not taken as asked for."""
    if isinstance(content, list):
        texts = [text_of([part]) for part in content if text_of([part])]
        content = texts[-1] if texts else ""
    return _REMINDER.sub("", text_of(content))


def _results(turn: list[JSON]) -> list[tuple[str, str]]:
    """The tool results since the last user message, each with the name of the tool called."""
    names = {
        str(call.get("id")): _name(call)
        for message in turn
        if message.get("role") == "assistant"
        for call in _list(message.get("tool_calls"))
        if isinstance(call, dict)
    }
    return [
        (names.get(str(message.get("tool_call_id"))) or "tool", text_of(message.get("content")))
        for message in turn
        if message.get("role") == "tool"
    ]


def _calls(body: JSON, tools: dict[str, JSON], text: str, turn: list[JSON], results: list[Any]) -> list[str]:
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return []
    if isinstance(choice, dict):
        return [_name(choice) or next(iter(tools))]
    forced = choice == "required"
    named = [] if results else named_tools(text, list(tools))
    if body.get("parallel_tool_calls") is False:
        named = named[:1]
    if named or not forced:
        return named
    called = {_name(call) for message in turn for call in _list(message.get("tool_calls")) if isinstance(call, dict)}
    return [next((name for name in tools if name not in called), next(iter(tools)))]


def named_tools(text: str, names: list[str]) -> list[str]:
    """The tools that ``text`` names or asks for, in the order it mentions them."""
    lowered = text.lower()
    words: dict[str, int] = {}
    for match in re.finditer(r"[a-z0-9]+", lowered):
        words.setdefault(_stem(match.group()), match.start())
    found: list[tuple[int, str]] = []
    for name in names:
        spaced = " ".join(_words(name))
        whole = re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", lowered) or re.search(
            rf"\b{re.escape(spaced)}\b", lowered
        )
        if whole:
            found.append((whole.start(), name))
            continue
        topic = [_stem(word) for word in spaced.split() if word not in VERBS]
        if topic and all(word in words for word in topic):
            found.append((min(words[word] for word in topic), name))
    return [name for _, name in sorted(found)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name(call: JSON) -> str:
    """The function's name in a tool call or a tool_choice."""
    function = call.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else ""


def _words(name: str) -> list[str]:
    """``get_weather``, ``get-weather``, ``getWeather``: get, weather."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ").lower().split()


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
