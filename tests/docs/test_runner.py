"""The snippet runner itself: a snippet that cannot run must fail its page, and the directives do what
docs/contributing.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.runner import PageRun
from tests.docs.snippets import SnippetError, blocks_of

FENCE = "```"


def page(*parts: str) -> str:
    return "\n".join(parts) + "\n"


def block(language: str, code: str, *, before: str = "", info: str = "") -> str:
    lines = [before] if before else []
    lines += [f"{FENCE}{language}{' ' + info if info else ''}", code.strip("\n"), FENCE]
    return "\n".join(lines)


def run(tmp_path: Path, text: str) -> PageRun:
    blocks = blocks_of(Path("page.md"), text)
    workdir = tmp_path / "work"
    workdir.mkdir(parents=True)
    runner = PageRun(workdir)
    runner.run(blocks)
    return runner


def test_blocks_keep_their_line_language_title_and_directive() -> None:
    text = page(
        "# A page",
        "",
        "<!-- snippet: skip needs Docker -->",
        block("bash", "docker compose up -d"),
        "  - a list item:",
        "",
        "    ```yaml title='relaygate.yaml'",
        "    projects: []",
        "    ```",
        block("json", '{"shown": true}'),
    )
    skipped, indented, shown = blocks_of(Path("page.md"), text)
    assert (skipped.line, skipped.language, skipped.skip, skipped.runs) == (4, "bash", "needs Docker", False)
    assert (indented.title, indented.code, indented.kind, indented.runs) == (
        "relaygate.yaml",
        "projects: []\n",
        "yaml",
        True,
    )
    assert shown.kind is None and not shown.runs


@pytest.mark.parametrize(
    ("directive", "problem"),
    [
        ("<!-- snippet: skip -->", "needs a reason"),
        ("<!-- snippet: later please -->", "unknown snippet directive 'later'"),
        ("<!-- snippet: status many -->", "takes HTTP statuses"),
    ],
)
def test_a_directive_the_runner_cannot_use_is_an_error(directive: str, problem: str) -> None:
    with pytest.raises(SnippetError, match=problem):
        blocks_of(Path("page.md"), page(block("bash", "true", before=directive)))


def test_a_block_that_never_closes_is_an_error() -> None:
    with pytest.raises(SnippetError, match="page.md:1: a code block that never closes"):
        blocks_of(Path("page.md"), "```bash\ncurl -s http://127.0.0.1:8080/health\n")


def test_a_failing_python_block_fails_its_page_naming_the_line(tmp_path: Path) -> None:
    text = page(block("python", "answer = 42"), block("python", "assert answer == 41, 'wrong answer'"))
    with pytest.raises(SnippetError, match=r"page.md:4: the Python block failed:(.|\n)*wrong answer"):
        run(tmp_path, text)


def test_python_blocks_share_one_namespace_and_title_blocks_are_modules(tmp_path: Path) -> None:
    text = page(
        block("python", "def double(x):\n    return 2 * x", info='title="helpers.py"'),
        block("python", "from helpers import double\nvalue = double(21)"),
        block("python", "assert value == 42"),
    )
    assert run(tmp_path, text).ran == 3


def test_a_config_that_does_not_load_fails_its_page(tmp_path: Path) -> None:
    text = page(block("yaml", "providers:\n  up: {kind: openai}"))
    with pytest.raises(SnippetError, match="page.md:1: the config does not load(.|\n)*base_url is required"):
        run(tmp_path, text)


def test_a_config_gets_placeholders_for_its_variables_and_shell_blocks_see_them(tmp_path: Path) -> None:
    text = page(
        block("yaml", 'projects:\n  - id: p\n    keys: ["${MY_KEY}"]'),
        block("bash", 'test "$MY_KEY" = docs-my-key\nexport LATER=yes'),
        block("bash", 'test "$LATER" = yes'),
        block("python", "import os\nassert os.environ['LATER'] == 'yes'"),
    )
    assert run(tmp_path, text).ran == 4


def test_a_failing_shell_command_fails_its_page(tmp_path: Path) -> None:
    with pytest.raises(SnippetError, match="page.md:1: the block exited with 3"):
        run(tmp_path, page(block("bash", "true\n(exit 3)\necho not reached")))


def test_a_command_that_keeps_running_must_be_a_server_block(tmp_path: Path) -> None:
    with pytest.raises(SnippetError, match="keeps running"):
        run(tmp_path, page(block("bash", "relaygate serve --port 8080")))


def test_requests_against_the_default_gateway_must_succeed_unless_marked(tmp_path: Path) -> None:
    ok = "curl -s http://127.0.0.1:8080/health"
    missing = "curl -s http://localhost:8080/no/such/route"
    text = page(
        block("bash", ok),
        block("bash", missing, before="<!-- snippet: status 404 -->"),
        # A config written as relaygate.yaml restarts the runner's gateway on it: now a key is needed.
        block("yaml", 'projects:\n  - id: p\n    keys: ["${DOCS_KEY}"]', info='title="relaygate.yaml"'),
        block(
            "bash",
            "curl -s http://127.0.0.1:8080/v1/models\n"
            'curl -s http://127.0.0.1:8080/v1/models -H "Authorization: Bearer $DOCS_KEY"',
            before="<!-- snippet: status 401 200 -->",
        ),
    )
    assert run(tmp_path, text).ran == 4
    with pytest.raises(SnippetError, match=r"page.md:1: a request failed \(statuses \[404\]\)"):
        run(tmp_path / "unmarked", page(block("bash", missing)))


def test_a_status_directive_fails_when_the_status_does_not_come(tmp_path: Path) -> None:
    text = page(block("bash", "curl -s http://127.0.0.1:8080/health", before="<!-- snippet: status 404 -->"))
    with pytest.raises(SnippetError, match=r"expected the statuses \[404\], got \[200\]"):
        run(tmp_path, text)


def test_a_server_block_runs_on_a_free_port_that_later_blocks_reach(tmp_path: Path) -> None:
    app = "async def app(scope, receive, send):\n" + (
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'hi'})\n"
    )
    text = page(
        block("python", app, info='title="tiny.py"'),
        block("bash", "uvicorn tiny:app --port 8123 --lifespan off", before="<!-- snippet: server -->"),
        block("bash", 'test "$(curl -s http://127.0.0.1:8123/)" = hi'),
        block("python", "import httpx\nassert httpx.get('http://localhost:8123/').text == 'hi'"),
    )
    runner = run(tmp_path, text)
    assert runner.ran == 4 and not runner.servers  # stopped with the page
