"""scripts/_venv.sh, which scripts/serve and scripts/test source: installs take turns through a lock, say what
they do, install only the extras asked for, and are skipped once done.

A tiny project of its own (no dependencies) stands in for relaygate, so that a real ``python -m venv`` and
``pip install -e`` run in seconds.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY_PROJECT = """\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "tiny-relaygate-stand-in"
version = "0"

[project.optional-dependencies]
test = []
docs = []

[tool.hatch.build.targets.wheel]
bypass-selection = true
"""
WAITING = "another scripts/serve or scripts/test is installing into .venv; waiting for it to finish"


def _project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "_venv.sh", tmp_path / "scripts" / "_venv.sh")
    (tmp_path / "pyproject.toml").write_text(TINY_PROJECT)
    return tmp_path


def _venv(project: Path, extras: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RELAYGATE_EXTRAS": extras, "PYTHON": sys.executable}
    return subprocess.Popen(
        ["bash", "-c", "source scripts/_venv.sh && .venv/bin/python -c 'print(\"ready\")'"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_and_test_started_together_take_turns_then_start_at_once(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with (project / ".venv.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # an install in progress
        serve, test = _venv(project, ""), _venv(project, "test docs")
        time.sleep(2)
        # Both wait, and neither has touched the venv.
        assert serve.poll() is None and test.poll() is None
        assert not (project / ".venv").exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    outputs = [process.communicate(timeout=300) for process in (serve, test)]
    assert [process.returncode for process in (serve, test)] == [0, 0], outputs
    for out, err in outputs:
        assert out.strip() == "ready"
        assert WAITING in err
    # One made the venv; the other installed only what it lacked on top, or found it all there.
    errors = "".join(err for _, err in outputs)
    assert errors.count("making .venv") == 1
    assert "installing relaygate with its extras (test docs) into .venv (pip install -e '.[test,docs]')" in errors
    assert re.search(r"installed \d+ packages in \d+ s \(\d+ MB in .venv\)", errors)
    assert sorted((project / ".venv" / ".relaygate-installed").read_text().split()) == ["docs", "test"]
    # Later starts of either install nothing, say nothing and take no lock.
    with (project / ".venv.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for extras in ("", "test docs"):
            again = _venv(project, extras)
            out, err = again.communicate(timeout=60)
            assert (again.returncode, out.strip(), err) == (0, "ready", "")


def test_serve_installs_no_extra_and_test_installs_the_docs() -> None:
    serve = (ROOT / "scripts" / "serve").read_text()
    test = (ROOT / "scripts" / "test").read_text()
    # No extra unless the caller names one (RELAYGATE_EXTRAS=scripts ./scripts/serve for script routers).
    assert 'RELAYGATE_EXTRAS="${RELAYGATE_EXTRAS:-}" source scripts/_venv.sh' in serve
    # V8 (82 MB) stays out of what serving needs: it alone would take the serve venv past half of 428 MB.
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [dependency for dependency in core if dependency.startswith("mini-racer")]
    assert 'RELAYGATE_EXTRAS="test docs" source scripts/_venv.sh' in test
