"""mkdocs hook: a page line ``<!-- generated: NAME -->`` becomes the reference NAME, rendered from the code.

The configuration reference comes from the settings models and the command-line reference from the
``relaygate`` parser (:mod:`relaygate.reference`), at every build, so that neither can drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mkdocs.exceptions import PluginError

from relaygate.reference import command_reference, configuration_reference
from relaygate.reference.config import environment_reference

GENERATORS: dict[str, Callable[[], str]] = {
    "configuration": configuration_reference,
    "environment": environment_reference,
    "cli": command_reference,
}
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    def render(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise PluginError(f"unknown generated block {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(render, markdown)
