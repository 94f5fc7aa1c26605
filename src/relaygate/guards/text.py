"""Where the texts guards judge live in a request or an answer, so that redaction can write them back.

A request's texts are all that its messages send upstream as text, of every role (system, developer,
user, assistant, tool), not only the last message:

- a message's ``content``: a string, or its ``text`` and ``refusal`` parts joined into one text, as the
  providers join them, so that a card number split across two parts is still judged as one;
- an assistant message's ``refusal``;
- the ``arguments`` of each of its tool calls (and of a legacy ``function_call``), as the JSON text they
  are: pii's placeholders keep that JSON valid, a regex guard's ``replacement`` should too.

For embeddings they are the ``input`` strings and for images the ``prompt``. An answer's texts are the
``message.content`` of each choice; tool-call arguments are not judged there.

A text joined from parts is redacted in place: a redaction goes into the part where it starts, and what
it covers of later parts is cut from them; the other parts (an image between two texts) stay where they
are.
"""

from __future__ import annotations

from typing import Any

from relaygate.guards.results import Edit, Verdict

__all__ = ["Slot", "Texts", "answer_texts", "request_texts"]

# A string in place: the dict or list holding it and its key or index there.
Slot = tuple[Any, Any]
# The key of the string in a content part of each kind that is text.
_PART_TEXT = {"text": "text", "refusal": "refusal"}


class Texts:
    """Texts judged together, each the join of one or more slots; :meth:`redact` follows a redacting
    guard's verdict, :meth:`write` puts the result back where the texts came from."""

    __slots__ = ("_parts", "_slots", "strings")

    def __init__(self, slots: list[list[Slot]]) -> None:
        self._slots = slots
        self._parts = [[holder[key] for holder, key in text] for text in slots]
        self.strings = [part[0] if len(part) == 1 else "".join(part) for part in self._parts]

    def __len__(self) -> int:
        return len(self.strings)

    def redact(self, verdict: Verdict) -> None:
        """Take a redacting guard's rewritten texts (judged from :attr:`strings` as they are now)."""
        assert verdict.texts is not None
        for index, text in enumerate(verdict.texts):
            parts = self._parts[index]
            if len(parts) == 1:
                parts[0] = text
            elif verdict.edits is not None:
                self._parts[index] = _edit_parts(parts, verdict.edits[index])
            elif text != self.strings[index]:
                # No edits to place: all the text goes into the first part, which joins to the same.
                self._parts[index] = [text] + [""] * (len(parts) - 1)
        self.strings = list(verdict.texts)

    def write(self) -> None:
        for slots, parts in zip(self._slots, self._parts, strict=True):
            for (holder, key), part in zip(slots, parts, strict=True):
                holder[key] = part


def request_texts(endpoint: str, body: dict[str, Any]) -> Texts:
    slots: list[list[Slot]] = []
    if endpoint == "chat":
        messages = body.get("messages")
        # A malformed body reaches the guards before the adapters refuse it: read only what is well-formed.
        for message in messages if isinstance(messages, list) else ():
            if isinstance(message, dict):
                slots.extend(_message_slots(message))
    elif endpoint == "embeddings":
        inputs = body.get("input")
        if isinstance(inputs, str):
            slots.append([(body, "input")])
        elif isinstance(inputs, list):
            slots.extend([(inputs, index)] for index, item in enumerate(inputs) if isinstance(item, str))
    elif endpoint == "images" and isinstance(body.get("prompt"), str):
        slots.append([(body, "prompt")])
    return Texts(slots)


def answer_texts(answer: dict[str, Any]) -> Texts:
    slots: list[list[Slot]] = []
    choices = answer.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            slots.append([(message, "content")])
    return Texts(slots)


def _message_slots(message: dict[str, Any]) -> list[list[Slot]]:
    out: list[list[Slot]] = []
    content = message.get("content")
    if isinstance(content, str):
        out.append([(message, "content")])
    elif isinstance(content, list):
        parts: list[Slot] = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            key = _PART_TEXT.get(kind) if isinstance(kind, str) else None
            if key is not None and isinstance(part.get(key), str):
                parts.append((part, key))
        if parts:
            out.append(parts)
    if isinstance(message.get("refusal"), str):
        out.append([(message, "refusal")])
    calls = message.get("tool_calls")
    functions = [call.get("function") for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []
    functions.append(message.get("function_call"))
    out.extend(
        [(function, "arguments")]
        for function in functions
        if isinstance(function, dict) and isinstance(function.get("arguments"), str)
    )
    return out


def _edit_parts(parts: list[str], edits: list[Edit]) -> list[str]:
    """``parts`` with ``edits`` (spans of their join, sorted, not overlapping) made in place."""
    starts: list[int] = []
    at = 0
    for part in parts:
        starts.append(at)
        at += len(part)
    out = list(parts)
    # From the last edit back: an edit changes only what follows its start, so the ones before keep
    # their positions.
    for start, end, replacement in reversed(edits):
        first = next(
            (index for index, part in enumerate(parts) if starts[index] <= start < starts[index] + len(part)),
            len(parts) - 1,
        )
        local = start - starts[first]
        out[first] = out[first][:local] + replacement + out[first][min(end - starts[first], len(parts[first])) :]
        for index in range(first + 1, len(parts)):
            if starts[index] >= end:
                break
            out[index] = out[index][min(end - starts[index], len(parts[index])) :]
    return out
