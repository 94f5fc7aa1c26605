"""Top-level members of a JSON object replaced or removed in its bytes, the rest left as it came.

A native Anthropic call sends the caller's body byte for byte but for the model name (and the gateway's
own fields, which Anthropic would refuse): re-serializing it would reorder nothing, but could change
number spellings, escapes and whitespace, and Anthropic's prompt cache keys on the request as sent. So
the object's top level is scanned (strings with their escapes, nested values skipped by bracket depth)
and only the spans of the members named are rewritten. The body has been parsed already (it is valid
JSON), which the scanner relies on.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import orjson

__all__ = ["splice"]

WHITESPACE = b" \t\r\n"
_STRUCTURE = re.compile(rb'["{}\[\]]')


def splice(raw: bytes, *, replace: Mapping[str, Any], drop: Collection[str] = ()) -> bytes:
    """``raw`` (a JSON object) with the values of top-level members in ``replace`` replaced (serialized
    with orjson) and the members in ``drop`` removed; a key written twice is rewritten each time."""
    members = _members(raw)
    out = bytearray()
    at = 0
    for index, (key, start, value_start, end) in enumerate(members):
        if key in drop:
            # The member goes with the comma after it, or, for the last member, the one before it.
            if index + 1 < len(members):
                cut_end = members[index + 1][1]
                cut_start = start
            else:
                cut_start = _comma_before(raw, start) if index > 0 else start
                cut_end = end
            if cut_start < at:
                continue
            out += raw[at:cut_start]
            at = cut_end
        elif key in replace:
            out += raw[at:value_start] + orjson.dumps(replace[key])
            at = end
    return bytes(out + raw[at:])


def _members(raw: bytes) -> list[tuple[str, int, int, int]]:
    """Each top-level member as (key, start of its key, start of its value, end of its value)."""
    i = _skip_space(raw, 0)
    if raw[i : i + 1] != b"{":
        raise ValueError("not a JSON object")
    i = _skip_space(raw, i + 1)
    members: list[tuple[str, int, int, int]] = []
    while raw[i : i + 1] != b"}":
        start = i
        key_end = _string_end(raw, i)
        key = orjson.loads(raw[i:key_end])
        i = _skip_space(raw, key_end)
        if raw[i : i + 1] != b":":
            raise ValueError("expected ':'")
        value_start = _skip_space(raw, i + 1)
        end = _value_end(raw, value_start)
        members.append((key, start, value_start, end))
        i = _skip_space(raw, end)
        if raw[i : i + 1] == b",":
            i = _skip_space(raw, i + 1)
    return members


def _skip_space(raw: bytes, i: int) -> int:
    while i < len(raw) and raw[i] in WHITESPACE:
        i += 1
    return i


def _string_end(raw: bytes, i: int) -> int:
    """The index after the string starting at ``raw[i]`` (a quote)."""
    i += 1
    while True:
        quote = raw.index(b'"', i)
        backslashes = 0
        while raw[quote - 1 - backslashes] == 0x5C:  # an escaped quote has an odd run of backslashes before it
            backslashes += 1
        if backslashes % 2 == 0:
            return quote + 1
        i = quote + 1


def _value_end(raw: bytes, i: int) -> int:
    first = raw[i : i + 1]
    if first == b'"':
        return _string_end(raw, i)
    if first not in (b"{", b"["):
        while i < len(raw) and raw[i] not in b",}] \t\r\n":
            i += 1
        return i
    # A nested value: jump from one quote or bracket to the next (a Claude Code request is ~75 KB of them).
    depth = 0
    while True:
        found = _STRUCTURE.search(raw, i)
        if found is None:
            raise ValueError("unterminated JSON value")
        char = raw[found.start()]
        if char == 0x22:  # "
            i = _string_end(raw, found.start())
            continue
        depth += 1 if char in b"{[" else -1
        i = found.start() + 1
        if depth == 0:
            return i


def _comma_before(raw: bytes, i: int) -> int:
    i -= 1
    while raw[i] in WHITESPACE:
        i -= 1
    return i if raw[i : i + 1] == b"," else i + 1
