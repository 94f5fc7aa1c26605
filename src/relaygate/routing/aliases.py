"""Model aliases: names clients send, routed as other names (``model_aliases:`` in the config).

Clients that cannot be told which model to ask for send names of their own: Claude Code asks for
``claude-sonnet-4-5-20250929`` and ``claude-haiku-4-5-20251001``. An alias maps such a name to anything
the router serves (a ``provider/model``, a virtual model, a bare name for ``default_provider``). A name
is looked up, in this order:

1. as it is (``claude-sonnet-4-5-20250929``);
2. without a date suffix (``-20250929`` or ``@20250929``): an alias of a model stands for its snapshots;
3. by the longest alias ending in ``*`` that it starts with (``claude-haiku*``, then ``claude-*``, then ``*``);
   the router asks patterns only of names it would not route otherwise (neither a virtual model, nor
   ``router/...``, nor ``provider/model`` of a configured provider), so ``*`` cannot hide a real model.

An alias's target is not looked up again: aliases do not chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["Aliases"]

DATE_SUFFIX = re.compile(r"[-@]\d{8}$")


class Aliases:
    def __init__(self, aliases: Mapping[str, str]) -> None:
        self.exact = {name: target for name, target in aliases.items() if not name.endswith("*")}
        # Longest prefix first: the most specific pattern wins.
        self.prefixes = sorted(
            ((name[:-1], target) for name, target in aliases.items() if name.endswith("*")),
            key=lambda item: len(item[0]),
            reverse=True,
        )

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def lookup(self, name: str, *, patterns: bool = True) -> str | None:
        """The name ``name`` is routed as, or ``None`` when no alias covers it; ``patterns=False`` looks
        at the aliases that name a model (with or without its date) only."""
        if not self:
            return None
        target = self.exact.get(name)
        if target is None:
            undated = DATE_SUFFIX.sub("", name)
            target = self.exact.get(undated) if undated != name else None
        if target is None and patterns:
            target = next((target for prefix, target in self.prefixes if name.startswith(prefix)), None)
        return target

    def items(self) -> list[tuple[str, str]]:
        """Every alias as written (patterns with their ``*``)."""
        return [*self.exact.items(), *((prefix + "*", target) for prefix, target in self.prefixes)]
