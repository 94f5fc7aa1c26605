"""The conditions of the ``conditional`` strategy: facts of a request tested against values.

A route's ``when`` maps facts to tests, and holds when every test does::

    when: {user.tier: gold, header.x-region: [eu, uk], param.max_tokens: {gt: 4000}}

Facts: ``user.<field>`` (the request's ``extra.user``: ``id``, ``name``, ``tags`` or any other field),
``header.<name>`` (a request header), ``param.<name>`` (a top-level request parameter such as
``temperature``, ``max_tokens``, ``stream`` or ``tools``) and ``project`` (the project id).

Tests: a plain value is equality (for a list fact such as ``user.tags``: membership), a list means
"one of", and a mapping names one operator: ``eq``, ``ne``, ``in``, ``not_in``, ``gt``, ``gte``,
``lt``, ``lte``, ``contains``, ``exists``. A fact the request lacks passes only ``ne``, ``not_in`` and
``exists: false``. Header values are text, so a number written in a test is compared as text there.

This module imports nothing of relaygate: the settings validate conditions with it at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OPERATORS", "Facts", "Test", "matches", "parse_when"]

OPERATORS = frozenset({"eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists"})
FACT_PREFIXES = ("user.", "header.", "param.")
PLAIN_FACTS = frozenset({"project"})
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Facts:
    """What a condition may look at in one request."""

    user: Mapping[str, Any]
    headers: Mapping[str, str]
    params: Mapping[str, Any]
    project: str | None = None

    def get(self, fact: str) -> Any:
        if fact == "project":
            return self.project if self.project is not None else _MISSING
        kind, _, name = fact.partition(".")
        source = {"user": self.user, "header": self.headers, "param": self.params}[kind]
        return source.get(name.lower() if kind == "header" else name, _MISSING)


@dataclass(frozen=True, slots=True)
class Test:
    fact: str
    op: str
    value: Any

    def holds(self, facts: Facts) -> bool:
        found = facts.get(self.fact)
        if self.op == "exists":
            return (found is not _MISSING) is self.value
        if found is _MISSING:
            return self.op in ("ne", "not_in")
        if self.op in ("eq", "ne"):
            return _equal(found, self.value) is (self.op == "eq")
        if self.op in ("in", "not_in"):
            return any(_equal(found, value) for value in self.value) is (self.op == "in")
        if self.op == "contains":
            if isinstance(found, str):
                return isinstance(self.value, str) and self.value in found
            return isinstance(found, list | tuple) and self.value in found
        if not _is_number(found):
            return False
        number, limit = float(found), float(self.value)
        return {"gt": number > limit, "gte": number >= limit, "lt": number < limit, "lte": number <= limit}[self.op]


def matches(tests: tuple[Test, ...], facts: Facts) -> bool:
    return all(test.holds(facts) for test in tests)


def parse_when(when: Mapping[str, Any]) -> tuple[Test, ...]:
    """The tests of a ``when`` mapping; :class:`ValueError` naming the fact when one is not understood."""
    if not when:
        raise ValueError("a route needs at least one condition")
    tests = []
    for fact, test in when.items():
        if not isinstance(fact, str) or not (fact in PLAIN_FACTS or _prefixed(fact)):
            raise ValueError(f"unknown fact {fact!r}: use user.<field>, header.<name>, param.<name> or project")
        if isinstance(test, Mapping):
            if len(test) != 1:
                raise ValueError(f"{fact}: a test names one operator, e.g. {{gt: 1000}}")
            ((op, value),) = test.items()
            if op not in OPERATORS:
                raise ValueError(f"{fact}: unknown operator {op!r}; the operators are {', '.join(sorted(OPERATORS))}")
        elif isinstance(test, list):
            op, value = "in", test
        else:
            op, value = "eq", test
        _check(fact, op, value)
        tests.append(Test(fact, op, tuple(value) if isinstance(value, list) else value))
    return tuple(tests)


def _prefixed(fact: str) -> bool:
    return any(fact.startswith(prefix) and len(fact) > len(prefix) for prefix in FACT_PREFIXES)


def _check(fact: str, op: str, value: Any) -> None:
    if op in ("in", "not_in") and not isinstance(value, list):
        raise ValueError(f"{fact}: {op} needs a list of values")
    if op in ("gt", "gte", "lt", "lte") and not _is_number(value):
        raise ValueError(f"{fact}: {op} needs a number")
    if op == "exists" and not isinstance(value, bool):
        raise ValueError(f"{fact}: exists needs true or false")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(found: Any, value: Any) -> bool:
    if isinstance(found, list | tuple):
        return any(_equal(item, value) for item in found)
    if isinstance(found, str) and _is_number(value):
        return found == str(value)  # header values are text; YAML reads "1" as a number
    return bool(found == value) and isinstance(found, bool) is isinstance(value, bool)
