"""The docs site builds with ``mkdocs build --strict``, its generated references cover the code, and the
hand-written references name what the code emits, so that none of them drifts from it."""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from relaygate.reference import command_reference, configuration_reference, settings_sections
from relaygate.reference.config import field_description
from relaygate.settings import ALIASES
from tests.docs.runner import ROOT

DOCS = ROOT / "docs"
README_LIMIT = 12 * 1024


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def test_the_site_builds_strict_with_the_generated_references(site: Path) -> None:
    configuration = (site / "reference" / "configuration" / "index.html").read_text(encoding="utf-8")
    assert "generated:" not in configuration  # the markers were replaced
    for key in ("max_body_bytes", "first_chunk", "stream_hold_chars", "unsized_attachment_tokens", "OPENAI_API_KEY"):
        assert key in configuration
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for flag in ("--port", "--root-path", "--forwarded-allow-ips", "--workers", "keys hash"):
        assert flag in cli
    assert (site / "assets" / "stack.svg").is_file()
    assert "hooks" not in {path.name for path in site.iterdir()}  # the hook is not published


def test_the_readme_is_a_landing_page() -> None:
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) < README_LIMIT, f"README.md is {len(readme)} bytes; keep it under {README_LIMIT}"
    text = readme.decode()
    # Exactly the two quickstart commands, as the README's first code blocks.
    commands = re.findall(r"```bash\n(\./scripts/\w+)", text)
    assert commands == ["./scripts/serve", "./scripts/test"]
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), f"README.md links to {link}, which does not exist"


def test_every_setting_is_described_and_in_the_configuration_reference() -> None:
    reference = configuration_reference()
    undocumented = []
    for section in settings_sections():
        assert f"## {section.title} {{ #{section.anchor} }}" in reference
        for name in section.model.model_fields:
            if not field_description(section.model, name):
                undocumented.append(f"{section.model.__module__}.{section.model.__name__}.{name}")
            assert f"| `{name}` |" in reference.split(f"{{ #{section.anchor} }}", 1)[1]
    assert not undocumented, "write a comment above these settings fields (it is their documentation):\n" + "\n".join(
        undocumented
    )


def test_the_configuration_reference_reads_comments_and_links_its_sections() -> None:
    reference = configuration_reference()
    # A comment above a field, one beside it, and a field of a model declared in a base class.
    assert "| `read` | number (> 0) | `600.0` | Longest silence while reading a response;" in reference
    assert "| `endpoint` | string or null | `null` | OTEL_EXPORTER_OTLP_ENDPOINT; /v1/traces" in reference
    assert "| `tokens_per_minute` | integer (≥ 1) or null | `null` |" in reference
    for anchor in re.findall(r"\]\(#([a-z0-9-]+)\)", reference):
        assert f"{{ #{anchor} }}" in reference, f"a link to #{anchor}, which no section has"
    assert "Also at: `models.<name>.retry`." in reference


def test_the_command_reference_has_every_flag_of_serve() -> None:
    from relaygate.cli import build_parser

    reference = command_reference()
    commands = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    flags = [flag for action in commands.choices["serve"]._actions for flag in action.option_strings]
    assert "--port" in flags
    for flag in flags:
        if flag not in ("-h", "--help"):
            assert f"`{flag}`" in reference


def _python_sources() -> list[Path]:
    return [path for path in (ROOT / "src" / "relaygate").rglob("*.py")]


def test_the_telemetry_reference_names_every_attribute_and_metric_the_code_uses() -> None:
    names_module = ROOT / "src" / "relaygate" / "telemetry" / "names.py"
    constants = {
        node.targets[0].id: node.value.value
        for node in ast.parse(names_module.read_text()).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and "." in node.value.value
    }
    code = "\n".join(path.read_text() for path in _python_sources() if path != names_module)
    page = (DOCS / "reference" / "telemetry.md").read_text()
    used = {name: value for name, value in constants.items() if re.search(rf"\b{name}\b", code)}
    assert len(used) > 40
    missing = sorted(value.rstrip(".") for value in used.values() if value.rstrip(".") not in page)
    assert not missing, f"docs/reference/telemetry.md does not name: {missing}"


def test_the_errors_reference_names_every_error_code() -> None:
    codes: set[str] = set()
    for path in _python_sources():
        codes.update(re.findall(r"""\bcode\s*=\s*["']([a-z_]+)["']""", path.read_text()))
    page = (DOCS / "reference" / "errors.md").read_text()
    assert len(codes) > 20
    missing = sorted(code for code in codes if f"`{code}`" not in page)
    assert not missing, f"docs/reference/errors.md does not name: {missing}"


def test_the_headers_reference_names_every_header_the_gateway_reads_or_writes() -> None:
    headers: set[str] = set()
    for path in _python_sources():
        headers.update(name.lower() for name in re.findall(r"""b?["'](x-[a-z0-9-]+)["']""", path.read_text(), re.I))
    headers -= set(ALIASES)  # provider aliases such as x-ai are no headers
    page = (DOCS / "reference" / "headers.md").read_text().lower()
    assert len(headers) > 10
    missing = sorted(header for header in headers if header not in page)
    assert not missing, f"docs/reference/headers.md does not name: {missing}"
