"""Anthropic's ``system`` and ``messages`` as canonical chat messages, block by block.

The inverse of the Anthropic adapter's :mod:`~relaygate.providers.anthropic.conversation`, with its media
tables (:mod:`~relaygate.providers.anthropic.mapping`):

- ``system`` (a string or text blocks) is the first ``system`` message; a ``system`` message inside
  ``messages`` (Claude Code sends them) stays a ``system`` message where it stands.
- ``text`` blocks are text parts; ``image`` blocks (``base64`` or ``url`` source) ``image_url`` parts;
  ``document`` blocks a ``file`` part (a base64 PDF), text parts (a ``text`` or ``content`` source);
  ``search_result`` blocks their text.
- ``tool_use`` blocks are the assistant message's ``tool_calls``; each ``tool_result`` block is a ``tool``
  message (one with ``is_error`` says so in its text: chat has no such flag). Images in a tool result
  follow in a ``user`` message, since chat APIs take images from users only.
- ``thinking`` and ``redacted_thinking`` blocks are dropped: a chat call cannot carry them back.
- ``cache_control`` stays on parts and tools only when ``keep_cache_control`` (the Anthropic adapter
  reads it; an OpenAI server would refuse the unknown field).

What only Anthropic itself takes (server tool blocks, sources by ``file_id``, documents by URL) is noted
as :class:`Untranslatable`, refused only when an attempt is translated. Malformed input is a 400 naming
the field as Anthropic does (``messages.0.content.1.source``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from relaygate.errors import InvalidRequestError
from relaygate.providers.anthropic.mapping import data_url
from relaygate.providers.params import invalid

__all__ = ["Untranslatable", "chat_messages", "system_text"]

JSON = dict[str, Any]

ROLES = frozenset({"user", "assistant", "system"})
DROPPED = frozenset({"thinking", "redacted_thinking"})
# Blocks of Anthropic's server tools and connectors: a chat call has no counterpart.
SERVER_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)
TOOL_ERROR_PREFIX = "Error: "


@dataclass(frozen=True, slots=True)
class Untranslatable:
    """A part of the request only Anthropic itself can take."""

    param: str
    what: str

    def error(self) -> InvalidRequestError:
        return InvalidRequestError(
            f"{self.param}: {self.what} needs an Anthropic provider (the request passes through to it natively); "
            "this model's provider takes the request translated into a chat call.",
            param=self.param,
            code="unsupported_parameter",
        )


class _Reader:
    def __init__(self, keep_cache_control: bool, untranslatable: list[Untranslatable]) -> None:
        self.keep_cache_control = keep_cache_control
        self.untranslatable = untranslatable

    def part(self, block: JSON, out: JSON) -> JSON:
        if self.keep_cache_control and isinstance(block.get("cache_control"), dict):
            out["cache_control"] = block["cache_control"]
        return out

    def text(self, block: JSON, where: str) -> JSON:
        text = block.get("text")
        if not isinstance(text, str):
            raise invalid(f"{where}.text", "expected a string")
        return self.part(block, {"type": "text", "text": text})

    def media(self, block: JSON, where: str) -> list[JSON]:
        """An ``image`` or ``document`` block as content parts (none when only Anthropic can take it)."""
        kind = block["type"]
        source = block.get("source")
        if not isinstance(source, dict) or not isinstance(source.get("type"), str):
            raise invalid(f"{where}.source", "expected a source object with a type")
        source_type = source["type"]
        if source_type == "base64":
            if not isinstance(source.get("data"), str) or not isinstance(source.get("media_type"), str):
                raise invalid(f"{where}.source", "a base64 source needs 'media_type' and 'data' strings")
            url = data_url(source)
            if kind == "image":
                return [self.part(block, {"type": "image_url", "image_url": {"url": url}})]
            return [self.part(block, {"type": "file", "file": _file(block, url)})]
        if source_type == "url" and kind == "image":
            if not isinstance(source.get("url"), str):
                raise invalid(f"{where}.source.url", "expected a URL")
            return [self.part(block, {"type": "image_url", "image_url": {"url": source["url"]}})]
        if source_type == "text" and kind == "document":
            if not isinstance(source.get("data"), str):
                raise invalid(f"{where}.source.data", "expected a string")
            title = block.get("title")
            text = f"{title}\n\n{source['data']}" if isinstance(title, str) and title else source["data"]
            return [self.part(block, {"type": "text", "text": text})]
        if source_type == "content" and kind == "document":
            inner = source.get("content")
            if isinstance(inner, str):
                return [{"type": "text", "text": inner}]
            if not isinstance(inner, list):
                raise invalid(f"{where}.source.content", "expected a string or an array of blocks")
            return self.blocks(inner, f"{where}.source.content", frozenset({"text", "image"}))
        if source_type in ("url", "file"):
            self.untranslatable.append(Untranslatable(f"{where}.source", f"A {kind} with a '{source_type}' source"))
            return []
        raise invalid(f"{where}.source.type", f"'{source_type}' is not a source of a {kind} block")

    def blocks(self, blocks: list[Any], where: str, allowed: frozenset[str]) -> list[JSON]:
        """Content parts of blocks that are text, images, documents or search results."""
        parts: list[JSON] = []
        for index, block in enumerate(blocks):
            at = f"{where}.{index}"
            kind = _kind(block, at)
            if kind not in allowed:
                raise invalid(f"{at}.type", f"a block of type '{kind}' is not allowed here")
            parts.extend(self.block(block, kind, at))
        return parts

    def block(self, block: JSON, kind: str, where: str) -> list[JSON]:
        """Content parts of one text, image, document or search result block."""
        if kind == "text":
            return [self.text(block, where)]
        if kind == "search_result":
            return [self.part(block, {"type": "text", "text": _search_result(block, where)})]
        return self.media(block, where)

    def user(self, content: Any, where: str) -> list[JSON]:
        """Chat messages for a user turn: its tool results as ``tool`` messages, the rest as one user message."""
        if isinstance(content, str):
            return [{"role": "user", "content": content}]
        messages: list[JSON] = []
        parts: list[JSON] = []
        for index, block in enumerate(_blocks(content, where)):
            at = f"{where}.{index}"
            kind = _kind(block, at)
            if kind == "tool_result":
                if parts:
                    messages.append(_user(parts))
                    parts = []
                messages.extend(self.tool_result(block, at))
            elif kind in ("text", "image", "document", "search_result"):
                parts.extend(self.block(block, kind, at))
            elif kind in SERVER_BLOCKS:
                self.untranslatable.append(Untranslatable(f"{at}.type", f"A '{kind}' block"))
            elif kind not in DROPPED:
                raise invalid(f"{at}.type", f"a block of type '{kind}' is not allowed in a user message")
        if parts:
            messages.append(_user(parts))
        return messages

    def tool_result(self, block: JSON, where: str) -> list[JSON]:
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str) or not call_id:
            raise invalid(f"{where}.tool_use_id", "expected the id of the tool_use this result answers")
        content = block.get("content")
        if content is None:
            parts: list[JSON] = []
        elif isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            allowed = frozenset({"text", "image", "document", "search_result"})
            parts = self.blocks(content, f"{where}.content", allowed)
        else:
            raise invalid(f"{where}.content", "expected a string or an array of blocks")
        texts = [part["text"] for part in parts if part["type"] == "text"]
        media = [part for part in parts if part["type"] != "text"]
        text = "\n".join(texts)
        if block.get("is_error") is True:
            text = TOOL_ERROR_PREFIX + text
        out: list[JSON] = [{"role": "tool", "tool_call_id": call_id, "content": text}]
        if media:
            note = {"type": "text", "text": f"(The result of tool call {call_id} holds these attachments.)"}
            out.append({"role": "user", "content": [note, *media]})
        return out

    def assistant(self, content: Any, where: str) -> JSON:
        if isinstance(content, str):
            return {"role": "assistant", "content": content}
        texts: list[str] = []
        calls: list[JSON] = []
        for index, block in enumerate(_blocks(content, where)):
            at = f"{where}.{index}"
            kind = _kind(block, at)
            if kind == "text":
                texts.append(self.text(block, at)["text"])
            elif kind == "tool_use":
                calls.append(_tool_call(block, at))
            elif kind in SERVER_BLOCKS:
                self.untranslatable.append(Untranslatable(f"{at}.type", f"A '{kind}' block"))
            elif kind not in DROPPED:
                raise invalid(f"{at}.type", f"a block of type '{kind}' is not allowed in an assistant message")
        message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
        if calls:
            message["tool_calls"] = calls
        return message


def system_text(system: Any, keep_cache_control: bool) -> JSON | None:
    """The ``system`` message for Anthropic's ``system`` (a string or text blocks), ``None`` when empty."""
    if system is None:
        return None
    if isinstance(system, str):
        return {"role": "system", "content": system} if system else None
    if not isinstance(system, list):
        raise invalid("system", "expected a string or an array of text blocks")
    reader = _Reader(keep_cache_control, [])
    parts = reader.blocks(system, "system", frozenset({"text"}))
    if not parts:
        return None
    if any("cache_control" in part for part in parts):
        return {"role": "system", "content": parts}
    return {"role": "system", "content": "\n".join(part["text"] for part in parts)}


def chat_messages(messages: Any, keep_cache_control: bool, untranslatable: list[Untranslatable]) -> list[JSON]:
    """The canonical messages for Anthropic's ``messages``."""
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "expected a non-empty array of messages")
    reader = _Reader(keep_cache_control, untranslatable)
    out: list[JSON] = []
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise invalid(where, "expected a message object")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise invalid(f"{where}.role", "expected 'user' or 'assistant'")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise invalid(f"{where}.content", "expected a string or an array of content blocks")
        if role == "user":
            out.extend(reader.user(content, f"{where}.content"))
        elif role == "assistant":
            out.append(reader.assistant(content, f"{where}.content"))
        else:
            text = system_text(content, keep_cache_control)
            if text is not None:
                out.append(text)
    return out


def _user(parts: list[JSON]) -> JSON:
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        return {"role": "user", "content": parts[0]["text"]}
    return {"role": "user", "content": parts}


def _blocks(content: Any, where: str) -> list[Any]:
    if not isinstance(content, list):
        raise invalid(where, "expected an array of content blocks")
    return content


def _kind(block: Any, where: str) -> str:
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        raise invalid(f"{where}.type", "expected a content block with a type")
    return kind


def _file(block: JSON, url: str) -> JSON:
    file: JSON = {"file_data": url}
    title = block.get("title")
    if isinstance(title, str) and title:
        file["filename"] = title
    return file


def _search_result(block: JSON, where: str) -> str:
    texts: list[str] = []
    for part in block.get("content") or ():
        text = part.get("text") if isinstance(part, dict) else None
        if not isinstance(text, str):
            raise invalid(f"{where}.content", "expected text blocks")
        texts.append(text)
    head = " ".join(str(block.get(key)) for key in ("title", "source") if isinstance(block.get(key), str))
    return "\n".join([head, *texts] if head else texts)


def _tool_call(block: JSON, where: str) -> JSON:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"{where}.id", "expected a non-empty string")
    if not isinstance(name, str) or not name:
        raise invalid(f"{where}.name", "expected a non-empty string")
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise invalid(f"{where}.input", "expected an object")
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }
