"""Every runnable snippet of the docs and README.md, run or validated as docs/contributing.md says.

One test per page: its blocks run in order in a scratch directory, against ``relaygate serve`` on the
mock provider (or the config the page shows), so that a snippet that no longer runs fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.runner import ROOT, PageRun
from tests.docs.snippets import Block, SnippetError, blocks_of

PAGES = sorted([ROOT / "README.md", *(path for path in (ROOT / "docs").rglob("*.md") if "hooks" not in path.parts)])


def _blocks(page: Path) -> list[Block]:
    return blocks_of(page, name=page.relative_to(ROOT))


def _runnable(page: Path) -> bool:
    try:
        return any(block.runs for block in _blocks(page))
    except SnippetError:
        return True  # its test reports why


RUNNABLE = [page for page in PAGES if _runnable(page)]


def test_every_page_parses() -> None:
    for page in PAGES:
        _blocks(page)


@pytest.mark.parametrize("page", RUNNABLE, ids=[str(page.relative_to(ROOT)) for page in RUNNABLE])
def test_the_snippets_of_the_page_run(page: Path, tmp_path: Path) -> None:
    error = None
    run = PageRun(tmp_path)
    try:
        blocks = _blocks(page)
        run.run(blocks)
    except SnippetError as exc:
        error = str(exc)
    if error is not None:
        pytest.fail(error, pytrace=False)
    assert run.ran == sum(block.runs for block in blocks)


def test_every_skipped_snippet_says_why() -> None:
    # blocks_of refuses a skip without a reason and unknown directives; this reads every page once.
    skipped = [block for page in PAGES for block in _blocks(page) if block.skip is not None]
    assert all(block.skip for block in skipped)
