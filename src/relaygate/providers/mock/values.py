"""JSON values made from a JSON Schema, for the mock's structured outputs and tool-call arguments.

Deterministic: the same schema and text give the same value. The value is valid against the schema for
what clients send (pydantic's schemas with ``$ref``/``$defs``, ``anyOf`` for optional fields, enums,
nested objects, arrays and tuples, string formats, numeric bounds). Where the user's text obviously holds a
field's value it is used: ``key: value`` or ``key is value``, an enum value the text names, the text's
proper nouns for string fields in turn (``Paris`` in "the weather in Paris"), its numbers for numeric
fields in turn, and, after a tool call, the tool's result for the remaining string fields.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["Hints", "value_for"]

# Past this depth objects get only their required properties, arrays are empty where allowed and optional
# values are null, so that recursive schemas end.
MAX_DEPTH = 4
HARD_DEPTH = 32
DEFAULT_STRING = "mock"
FORMATS = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "duration": "PT1H",
    "email": "mock@example.com",
    "idn-email": "mock@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
    "idn-hostname": "example.com",
}
# Field names that want running text rather than a name: a tool's result goes there first.
TEXT_FIELDS = frozenset(
    "answer content description details explanation message output reason reply response result summary text".split()
)
# Capitalised words that are not names: sentence openers, pronouns and the like.
NOT_NAMES = frozenset(
    """a about an and answer are call can could do does find from get give hello hi how i if in is it json let
    list look make me my no now of ok okay on or please reply respond return run say show so tell thanks thank
    the then there this to use what when where which who why will with would write yes you your""".split()
)
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*")
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,15}(?:\.\d{1,15})?(?![\w.]?\d)")
# Bounds on what a schema can ask for, so that a hostile one cannot make a huge answer.
MAX_ITEMS = 64
MAX_LENGTH = 4096


class Hints:
    """What a user's text (and the tool results that followed it) offer to a value's fields."""

    def __init__(self, text: str, results: list[str] | None = None, *, exclude: frozenset[str] = frozenset()) -> None:
        self.text = text
        self.results = [result for result in results or () if result]
        self.names = [
            name
            for match in _NAME.finditer(text)
            if (name := _name(match.group(), _opens_sentence(text, match.start()))) and name.lower() not in exclude
        ]
        self.numbers = [match.group() for match in _NUMBER.finditer(text)]

    def explicit(self, key: str) -> str | None:
        """The value the text gives ``key``: ``key: value``, ``key = value``, ``key is value``."""
        for form in _forms(key):
            pattern = (
                rf"(?i:\b{re.escape(form)})\s*(?::|=|(?i:\bis\b|\bof\b))\s*"
                r"(\"[^\"]*\"|'[^']*'|[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*|[^\s,;!?]+)"
            )
            match = re.search(pattern, self.text)
            if match:
                value = match.group(1)
                if value[:1] in "\"'":
                    return value[1:-1]
                return value.rstrip(".")
        return None

    def string(self, key: str) -> str:
        explicit = self.explicit(key)
        if explicit is not None:
            return explicit
        if self.results and key.lower() in TEXT_FIELDS:
            return "\n".join(self.results)
        if self.names:
            return self.names.pop(0)
        if self.results:
            return "\n".join(self.results)
        return DEFAULT_STRING

    def number(self, key: str, integer: bool) -> float | None:
        for form in _forms(key):
            match = re.search(rf"(-?\d{{1,15}}(?:\.\d{{1,15}})?)\s+(?i:{re.escape(form)})", self.text)
            explicit = match.group(1) if match else None
            if explicit is not None:
                break
        else:
            explicit = self.explicit(key)
        for candidate in ([explicit] if explicit else []) + list(self.numbers):
            if _NUMBER.fullmatch(candidate) and (not integer or "." not in candidate):
                if candidate in self.numbers:
                    self.numbers.remove(candidate)
                return int(candidate) if integer else float(candidate)
        return None


def value_for(schema: Any, hints: Hints) -> Any:
    """A value valid against ``schema``, filled from ``hints`` where they fit."""
    return _Maker(schema, hints).value(schema, "", 0)


class _Maker:
    def __init__(self, root: Any, hints: Hints) -> None:
        self.root = root
        self.hints = hints

    def value(self, schema: Any, key: str, depth: int, variant: int = 0) -> Any:
        if depth > HARD_DEPTH:  # a schema that requires itself: no finite value fits it
            return None
        if not isinstance(schema, dict):
            return self._string({}, key, variant)
        schema = self._resolve(schema, 0)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self._enum(schema["enum"], key, variant)
        for keyword in ("anyOf", "oneOf"):
            branches = [b for b in _list(schema.get(keyword)) if isinstance(b, dict)]
            if branches:
                rest = {k: v for k, v in schema.items() if k != keyword}
                return self.value({**rest, **self._branch(branches, depth)}, key, depth, variant)
        kind = _kind(schema, depth >= MAX_DEPTH)
        if kind == "null":
            return None
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, key, depth)
        if kind in ("integer", "number"):
            return self._number(schema, key, kind == "integer", variant)
        if kind == "boolean":
            explicit = (self.hints.explicit(key) or "").lower() if key else ""
            return explicit not in ("false", "no", "0")
        return self._string(schema, key, variant)

    def _resolve(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """``schema`` with its ``$ref`` followed and its ``allOf`` merged in (``depth``: allOf nesting)."""
        seen = 0
        while isinstance(schema.get("$ref"), str) and seen < HARD_DEPTH:
            target = self._pointer(schema["$ref"])
            schema = {**target, **{k: v for k, v in schema.items() if k not in ("$ref", "$defs", "definitions")}}
            if schema.get("$ref") == target.get("$ref") and "$ref" in target:
                break
            seen += 1
        schema = {k: v for k, v in schema.items() if k != "$ref"}
        parts = [p for p in _list(schema.pop("allOf", None)) if isinstance(p, dict)] if depth < HARD_DEPTH else []
        for part in parts:
            part = self._resolve(part, depth + 1)
            for name, sub in part.items():
                if name == "properties" and isinstance(sub, dict):
                    schema["properties"] = {**sub, **_dict(schema.get("properties"))}
                elif name == "required":
                    schema["required"] = list(dict.fromkeys([*_strings(schema.get("required")), *_strings(sub)]))
                else:
                    schema.setdefault(name, sub)
        return schema

    def _pointer(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for token in ref[1:].split("/")[1:] if ref != "#" else []:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node.get(token) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    def _branch(self, branches: list[dict[str, Any]], depth: int) -> dict[str, Any]:
        concrete = [b for b in branches if b.get("type") != "null"]
        if depth >= MAX_DEPTH and len(concrete) < len(branches):
            return {"type": "null"}
        return (concrete or branches)[0]

    def _enum(self, values: list[Any], key: str, variant: int) -> Any:
        explicit = (self.hints.explicit(key) or "").lower() if key else ""
        for value in values:
            if isinstance(value, str) and value and value.lower() == explicit:
                return value
        for value in values:
            if isinstance(value, str) and value and re.search(rf"(?i)\b{re.escape(value)}\b", self.hints.text):
                return value
        return values[variant % len(values)]

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        required = _strings(schema.get("required"))
        out: dict[str, Any] = {}
        for name, sub in _dict(schema.get("properties")).items():
            if depth < MAX_DEPTH or name in required:
                out[name] = self.value(sub, name, depth + 1)
        extra = schema.get("additionalProperties")
        for name in required:
            if name not in out:
                out[name] = self.value(extra if isinstance(extra, dict) else {}, name, depth + 1)
        return out

    def _array(self, schema: dict[str, Any], key: str, depth: int) -> list[Any]:
        prefix = [p for p in _list(schema.get("prefixItems")) if isinstance(p, dict)]
        items = schema.get("items")
        low, high = schema.get("minItems"), schema.get("maxItems")
        count = max(low if isinstance(low, int) else 0, len(prefix), 0 if depth >= MAX_DEPTH or items is False else 1)
        count = min(count, high if isinstance(high, int) else count, MAX_ITEMS)
        unique = schema.get("uniqueItems") is True
        return [
            self.value(prefix[i] if i < len(prefix) else items, key, depth + 1, i if unique else 0)
            for i in range(count)
        ]

    def _number(self, schema: dict[str, Any], key: str, integer: bool, variant: int) -> float:
        value = self.hints.number(key, integer) if key else None
        number: float = (1 if value is None else value) + variant
        low, high = (
            _bound(schema, "minimum", "exclusiveMinimum", integer),
            _bound(schema, "maximum", "exclusiveMaximum", integer),
        )
        if low is not None and number < low:
            number = low
        if high is not None and number > high:
            number = high
        multiple = schema.get("multipleOf")
        if isinstance(multiple, int | float) and multiple > 0 and number % multiple:
            number = math.ceil(number / multiple) * multiple
            if high is not None and number > high:
                number -= multiple
        if integer:
            return math.ceil(number) if low is not None and number < math.ceil(number) else math.floor(number)
        return float(number)

    def _string(self, schema: dict[str, Any], key: str, variant: int) -> str:
        text = FORMATS.get(schema.get("format") or "")
        if text is None:
            text = self.hints.string(key)
            if variant:
                text = f"{text} {variant + 1}"
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _matches(pattern, text):
            text = next((c for c in (DEFAULT_STRING, "a", "A", "0", "") if _matches(pattern, c)), text)
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and len(text) < low:
            text += "x" * (min(low, MAX_LENGTH) - len(text))
        if isinstance(high, int) and len(text) > high:
            text = text[:high]
        return text


def _kind(schema: dict[str, Any], deep: bool) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        if deep and "null" in kind:
            return "null"
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, integer: bool) -> float | None:
    """The lowest (or highest) number that ``schema`` allows, as ``minimum`` (``maximum``) and their exclusives say."""
    sign = 1 if inclusive == "minimum" else -1
    bounds: list[float] = []
    if isinstance(schema.get(inclusive), int | float):
        bounds.append(schema[inclusive])
    if isinstance(schema.get(exclusive), int | float):
        bounds.append(schema[exclusive] + sign * (1 if integer else 0.5))
    if not bounds:
        return None
    return max(bounds) if sign > 0 else min(bounds)


def _opens_sentence(text: str, start: int) -> bool:
    """Whether the word at ``start`` opens the text, a line or a sentence (quotes and brackets aside)."""
    before = text[max(0, start - 16) : start]
    tail = before.rstrip(" \t\r\n\"'([{*_-")
    if "\n" in before[len(tail) :]:
        return True
    return (not tail and start <= 16) or tail.endswith((".", "!", "?"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [item for item in _list(value) if isinstance(item, str)]


def _forms(key: str) -> list[str]:
    if not key:
        return []
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).replace("_", " ").replace("-", " ").lower()
    return list(dict.fromkeys([key, spaced]))


def _name(words: str, opens_sentence: bool) -> str:
    """The name in a run of capitalised words: without the word that opens a sentence ("Plan 3 days in
    Lisbon"), nor words such as "I" or "Use"."""
    kept = words.split()[1:] if opens_sentence else words.split()
    while kept and kept[0].lower() in NOT_NAMES:
        kept.pop(0)
    return " ".join(kept)


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True
