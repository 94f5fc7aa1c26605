"""The code blocks of the docs and what their page says about running them (docs/contributing.md).

A fenced block in a runnable language (Python, shell, YAML) is run, or validated, by default. An HTML
comment on the line before its fence changes that:

- ``<!-- snippet: skip REASON -->``: not run; the reason is required.
- ``<!-- snippet: server -->``: a shell command that keeps running (``relaygate serve``, ``uvicorn``):
  started in the background on a free port, and stopped when the page ends.
- ``<!-- snippet: status 400 -->``: the block's requests answer these statuses (each at least once)
  instead of 2xx.

A block whose fence has a ``title="name.ext"`` is a file: it is written under that name (a YAML one is
also validated as a config) rather than run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DIRECTIVES", "LANGUAGES", "Block", "SnippetError", "blocks_of"]

# Fence language -> what the runner does with it; other languages are shown, never run.
LANGUAGES = {
    "python": "python",
    "py": "python",
    "bash": "shell",
    "sh": "shell",
    "shell": "shell",
    "yaml": "yaml",
    "yml": "yaml",
}
DIRECTIVES = ("skip", "server", "status")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"^[ \t]*<!--[ \t]*snippet:(?P<body>.*?)-->[ \t]*$")
_TITLE = re.compile(r"""title=(?:"([^"]*)"|'([^']*)'|(\S+))""")
# pymdownx.snippets: a line that includes a file, which is tested where it lives.
INCLUDE = "--8<--"


class SnippetError(Exception):
    """A page's block or directive the runner cannot use; the message names the page and line."""


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str  # the fence's, lower case
    code: str
    title: str | None = None
    skip: str | None = None  # the reason
    server: bool = False
    statuses: list[int] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        """``python``, ``shell`` or ``yaml`` for a block the runner handles; ``None`` for one only shown."""
        return LANGUAGES.get(self.language)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.kind is not None and self.skip is None and INCLUDE not in self.code


def blocks_of(page: Path, text: str | None = None, *, name: Path | None = None) -> list[Block]:
    """Every fenced block of a Markdown page, with the directive before it applied."""
    lines = (page.read_text(encoding="utf-8") if text is None else text).split("\n")
    shown = name or page
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        indent, fence, info = match.group("indent"), match.group("fence"), match.group("info").strip()
        end = index + 1
        while end < len(lines):
            closing = lines[end].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            end += 1
        if end == len(lines):
            raise SnippetError(f"{shown}:{index + 1}: a code block that never closes")
        body = [line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[index + 1 : end]]
        language = info.split()[0].lower() if info and not info.startswith("{") else ""
        title = _TITLE.search(info)
        block = Block(
            page=shown,
            line=index + 1,
            language=language,
            code="\n".join(body) + "\n",
            title=next((group for group in title.groups() if group is not None), None) if title else None,
        )
        _apply_directive(block, lines[index - 1] if index > 0 else "")
        blocks.append(block)
        index = end + 1
    return blocks


def _apply_directive(block: Block, previous: str) -> None:
    match = _DIRECTIVE.match(previous)
    if match is None:
        return
    body = match.group("body").strip()
    word, _, rest = body.partition(" ")
    rest = rest.strip()
    if word not in DIRECTIVES:
        raise SnippetError(f"{block.where}: unknown snippet directive {word!r}; known: {', '.join(DIRECTIVES)}")
    if block.kind is None:
        raise SnippetError(f"{block.where}: a snippet directive before a {block.language or 'plain'} block, never run")
    if word == "skip":
        if not rest:
            raise SnippetError(f"{block.where}: 'snippet: skip' needs a reason")
        block.skip = rest
    elif word == "server":
        if block.kind != "shell":
            raise SnippetError(f"{block.where}: 'snippet: server' is for a shell command")
        block.server = True
    elif word == "status":
        try:
            block.statuses = [int(status) for status in rest.replace(",", " ").split()]
        except ValueError:
            block.statuses = []
        if not block.statuses or block.kind != "shell":
            raise SnippetError(f"{block.where}: 'snippet: status' takes HTTP statuses, before a shell block")
