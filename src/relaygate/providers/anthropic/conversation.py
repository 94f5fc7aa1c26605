"""OpenAI chat messages as Anthropic's ``system`` blocks and alternating user/assistant turns.

- System and developer messages, wherever they stand, become the top-level ``system`` blocks, in order.
- Consecutive turns of one role are merged, since Anthropic wants user and assistant to alternate. In
  a user turn the ``tool_result`` blocks go first (Anthropic wants them at the start of the turn that
  follows the ``tool_use``); in an assistant turn the ``tool_use`` blocks go last.
- A conversation opening with an assistant turn gets a one-character user turn before it: Anthropic
  refuses a first message that is not the user's, and OpenAI accepts it.
- Empty and whitespace-only text is left out (Anthropic refuses empty text blocks), and a final
  assistant turn (a prefill) loses its trailing whitespace, which Anthropic refuses too.
- Images: ``data:`` URLs (any parameters, any case) become base64 sources, ``http(s)`` URLs ``url``
  sources; jpeg, png, gif and webp are accepted, PDFs become ``document`` blocks, anything else is a 400.
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import InvalidRequestError
from relaygate.providers.anthropic.mapping import MEDIA_TYPE_ALIASES, media_block
from relaygate.providers.media import image_url, is_data_url, parse_data_url
from relaygate.providers.params import invalid, named_function, tool_arguments

__all__ = ["conversation"]

JSON = dict[str, Any]

FIRST_TURN_PLACEHOLDER = "."

USER_PARTS = frozenset({"text", "image_url", "file"})
ASSISTANT_PARTS = frozenset({"text", "refusal"})
SYSTEM_PARTS = frozenset({"text"})
TOOL_PARTS = frozenset({"text", "image_url"})


def conversation(messages: list[Any]) -> tuple[list[JSON], list[JSON], list[str]]:
    """System blocks, Anthropic messages, and the tool names used in the history."""
    system: list[JSON] = []
    turns: list[tuple[str, list[JSON]]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_content_blocks(content, where, SYSTEM_PARTS))
            continue
        if role == "user":
            anthropic_role, blocks = "user", _content_blocks(content, where, USER_PARTS)
        elif role == "assistant":
            anthropic_role, blocks = "assistant", _assistant_blocks(message, where)
        elif role == "tool":
            anthropic_role, blocks = "user", [_tool_result(message, where)]
        elif role == "function":
            raise InvalidRequestError(
                "Messages with role 'function' (legacy function calling) are not supported for Anthropic "
                "models; use 'tools' and messages with role 'tool'.",
                param=f"{where}.role",
                code="invalid_value",
            )
        else:
            raise invalid(f"{where}.role", "expected 'system', 'developer', 'user', 'assistant' or 'tool'")
        if not blocks:
            continue  # Anthropic refuses empty turns; an empty message says nothing anyway
        if turns and turns[-1][0] == anthropic_role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((anthropic_role, blocks))

    out: list[JSON] = []
    tool_names: list[str] = []
    for role, blocks in turns:
        if role == "user":
            blocks.sort(key=lambda block: block["type"] != "tool_result")  # stable: order kept otherwise
        else:
            blocks.sort(key=lambda block: block["type"] == "tool_use")
            tool_names.extend(block["name"] for block in blocks if block["type"] == "tool_use")
        out.append({"role": role, "content": blocks})
    if out and out[-1]["role"] == "assistant":
        _strip_final_assistant(out)
    if not out:
        raise InvalidRequestError(
            "The messages hold no user or assistant content; Anthropic models need at least one.",
            param="messages",
            code="invalid_value",
        )
    if out[0]["role"] == "assistant":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": FIRST_TURN_PLACEHOLDER}]})
    return system, out, list(dict.fromkeys(tool_names))


def _strip_final_assistant(messages: list[JSON]) -> None:
    """Anthropic refuses a final assistant turn (a prefill) that ends with whitespace."""
    blocks = messages[-1]["content"]
    if blocks[-1]["type"] != "text":
        return
    text = blocks[-1]["text"].rstrip()
    if text:
        blocks[-1]["text"] = text
        return
    blocks.pop()
    if not blocks:
        messages.pop()


def _content_blocks(content: Any, where: str, allowed: frozenset[str]) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        part_where = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise InvalidRequestError(
                f"Content parts of type {kind!r} are not supported here for Anthropic models; "
                f"expected one of {', '.join(sorted(allowed))}.",
                param=f"{part_where}.type",
                code="invalid_value",
            )
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise invalid(f"{part_where}.{kind}", "expected a string")
            if not text.strip():
                continue  # Anthropic refuses empty text blocks
            block: JSON = {"type": "text", "text": text}
        elif kind == "image_url":
            block = _image_block(part.get("image_url"), f"{part_where}.image_url")
        else:
            block = _file_block(part.get("file"), f"{part_where}.file")
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _image_block(image: Any, where: str) -> JSON:
    url = image_url(image, where)
    if is_data_url(url):
        media_type, data = _data_url(url, f"{where}.url")
        return _media_block(media_type, data, where)
    if url[:8].lower().startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise invalid(f"{where}.url", "expected an http(s) URL or a data: URL")


def _file_block(file: Any, where: str) -> JSON:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str) or not is_data_url(data_url):
        raise InvalidRequestError(
            "Files for Anthropic models must be given inline as 'file_data' (a data: URL); file ids are not supported.",
            param=f"{where}.file_data",
            code="invalid_value",
        )
    media_type, data = _data_url(data_url, f"{where}.file_data")
    return _media_block(media_type, data, where)


def _data_url(url: str, where: str) -> tuple[str, str]:
    media_type, data = parse_data_url(url, where)
    if not data:
        raise invalid(where, "the data: URL holds no data")
    return MEDIA_TYPE_ALIASES.get(media_type, media_type), data


def _media_block(media_type: str, data: str, where: str) -> JSON:
    block = media_block(media_type, data)
    if block is not None:
        return block
    raise InvalidRequestError(
        f"Unsupported image type '{media_type}': Anthropic models accept image/jpeg, image/png, image/gif, "
        "image/webp and application/pdf.",
        param=where,
        code="invalid_image_format",
    )


def _assistant_blocks(message: dict[str, Any], where: str) -> list[JSON]:
    if message.get("function_call") is not None:
        raise InvalidRequestError(
            "'function_call' (legacy function calling) is not supported for Anthropic models; use 'tool_calls'.",
            param=f"{where}.function_call",
            code="invalid_value",
        )
    blocks = _content_blocks(message.get("content"), where, ASSISTANT_PARTS)
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise invalid(f"{where}.tool_calls", "expected an array")
        blocks.extend(_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(tool_calls))
    return blocks


def _tool_use(call: Any, where: str) -> JSON:
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise invalid(where, "expected a tool call of type 'function'")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"{where}.id", "expected a non-empty string")
    function, name = named_function(call, where)
    tool_input = tool_arguments(function.get("arguments"), f"{where}.function.arguments")
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}


def _tool_result(message: dict[str, Any], where: str) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"{where}.tool_call_id", "expected the id of the tool call this message answers")
    block: JSON = {"type": "tool_result", "tool_use_id": call_id}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content is not None:
        parts = _content_blocks(content, where, TOOL_PARTS)
        if parts:
            block["content"] = parts
    return block
