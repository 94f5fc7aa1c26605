"""OpenAI chat messages as Gemini's system instruction and contents.

System and developer messages, wherever they stand, become the system instruction, in order. Other
messages become ``user`` and ``model`` contents, consecutive ones of a role merged; tool results are
``functionResponse`` parts of a user content, named after the call they answer. A conversation of
system/developer messages only is a 400: Gemini needs at least one content. A replayed tool call gives
back the Gemini 3 ``thoughtSignature`` that rides in its id (see :func:`.responses.split_tool_call_id`).
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import InvalidRequestError
from relaygate.providers.gemini.media import AUDIO_FORMATS, file_part, media_part
from relaygate.providers.gemini.responses import split_tool_call_id
from relaygate.providers.media import image_url
from relaygate.providers.params import invalid_value, named_function, tool_arguments

__all__ = ["gemini_contents"]


def gemini_contents(messages: list[Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """The system instruction (every system/developer message, in order) and the merged contents."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    # Gemini's functionResponse needs the function's name, which OpenAI's tool message does not carry.
    names: dict[str, str] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return  # Gemini refuses a content without parts
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid_value("Each message must be an object.", where)
        role = message.get("role")
        if role in ("system", "developer"):
            text = _text_of(message.get("content"), where)
            if text:
                system.append(text)
        elif role == "user":
            add("user", _user_parts(message.get("content"), where))
        elif role == "assistant":
            add("model", _assistant_parts(message, where, names))
        elif role in ("tool", "function"):
            add("user", [_function_response(message, where, names)])
        else:
            raise invalid_value(
                f"Invalid role {role!r}: use system, developer, user, assistant or tool.", f"{where}.role"
            )
    if not contents:
        raise invalid_value(
            "Gemini needs at least one user or assistant message with content; only system messages were given.",
            "messages",
        )
    return "\n\n".join(system) or None, contents


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise invalid_value("'content' must be a string or an array of content parts.", f"{where}.content")
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        param = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid_value("A text part needs a string 'text'.", f"{param}.text")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            url = image_url(part.get("image_url"), f"{param}.image_url")
            parts.append(media_part(url, f"{param}.image_url.url"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            audio_format = audio.get("format") if isinstance(audio, dict) else None
            mime = AUDIO_FORMATS.get(audio_format) if isinstance(audio_format, str) else None
            if not isinstance(data, str) or mime is None:
                raise invalid_value("An input_audio part needs base64 'data' and a 'format' of wav or mp3.", param)
            parts.append({"inlineData": {"mimeType": mime, "data": data}})
        elif kind == "file":
            parts.append(file_part(part.get("file"), f"{param}.file"))
        else:
            raise invalid_value(
                f"Unsupported content part type {kind!r}: use text, image_url, input_audio or file.", f"{param}.type"
            )
    return parts


def _assistant_parts(message: dict[str, Any], where: str, names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    # An empty or null content next to tool calls must not become an empty text part.
    text = _text_of(message.get("content"), where, refusals=True)
    if text:
        parts.append({"text": text})
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise invalid_value("'tool_calls' must be an array.", f"{where}.tool_calls")
        for index, call in enumerate(tool_calls):
            parts.append(_function_call(call, f"{where}.tool_calls[{index}]", names))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        parts.append(_function_call({"function": legacy}, f"{where}.function_call", names))
    return parts


def _function_call(call: Any, param: str, names: dict[str, str]) -> dict[str, Any]:
    function, name = named_function(call, param)
    part: dict[str, Any] = {
        "functionCall": {"name": name, "args": tool_arguments(function.get("arguments"), f"{param}.function.arguments")}
    }
    call_id = call.get("id") if isinstance(call, dict) else None
    if isinstance(call_id, str) and call_id:
        names[call_id] = name
        signature = split_tool_call_id(call_id)[1]
        if signature:
            # Gemini 3 refuses a replayed call without the signature it was given (MISSING_THOUGHT_SIGNATURE).
            part["thoughtSignature"] = signature
    return part


def _function_response(message: dict[str, Any], where: str, names: dict[str, str]) -> dict[str, Any]:
    if message.get("role") == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequestError(
                "A tool message needs 'tool_call_id'.",
                param=f"{where}.tool_call_id",
                code="missing_required_parameter",
            )
        name = names.get(call_id) or message.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_value(
                f"'tool_call_id' {call_id!r} answers no tool call of an earlier assistant message.",
                f"{where}.tool_call_id",
            )
    else:
        name = message.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_value("A function message needs 'name'.", f"{where}.name")
    # Gemini wants an object as the response; the result text is kept whole under "content".
    return {"functionResponse": {"name": name, "response": {"content": _text_of(message.get("content"), where)}}}


def _text_of(content: Any, where: str, *, refusals: bool = False) -> str:
    """The text of a message that may hold only text (system, developer, tool, assistant)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_value("'content' must be a string or an array of text parts.", f"{where}.content")
    texts: list[str] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif refusals and kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        else:
            raise invalid_value("Only text parts are allowed in this message.", f"{where}.content[{index}]")
    return "".join(texts)
