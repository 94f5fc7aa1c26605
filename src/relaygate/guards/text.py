"""Where the texts guards judge live in a request or an answer, so that redaction can write them back.

A request's texts are every message's content going upstream: plain strings and the ``text`` parts of
multi-part content, of every role (system, user, assistant, tool), not only the last message. For
embeddings they are the ``input`` strings and for images the ``prompt``. An answer's texts are the
``message.content`` of each choice; tool-call arguments are not judged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Slot", "answer_slots", "request_slots"]

# A text in place: the dict or list holding it and its key or index there.
Slot = tuple[Any, Any]


def request_slots(endpoint: str, body: dict[str, Any]) -> list[Slot]:
    slots: list[Slot] = []
    if endpoint == "chat":
        for message in body.get("messages") or ():
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                slots.append((message, "content"))
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                        slots.append((part, "text"))
    elif endpoint == "embeddings":
        inputs = body.get("input")
        if isinstance(inputs, str):
            slots.append((body, "input"))
        elif isinstance(inputs, list):
            slots.extend((inputs, index) for index, item in enumerate(inputs) if isinstance(item, str))
    elif endpoint == "images" and isinstance(body.get("prompt"), str):
        slots.append((body, "prompt"))
    return slots


def answer_slots(answer: dict[str, Any]) -> list[Slot]:
    slots: list[Slot] = []
    for choice in answer.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            slots.append((message, "content"))
    return slots


def read(slots: list[Slot]) -> list[str]:
    return [holder[key] for holder, key in slots]


def write(slots: list[Slot], texts: list[str]) -> None:
    for (holder, key), text in zip(slots, texts, strict=True):
        holder[key] = text
