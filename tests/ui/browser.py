"""Headless Chromium for the dashboard's browser tests: Debian's ``chromium`` driven by Playwright (never a
downloaded browser), ``relaygate serve`` with a seeded ledger, and a fake Jaeger that also plays another site.

Without ``/usr/bin/chromium`` (or Playwright) the browser tests are skipped; under ``CI=true`` they fail, so CI
cannot pass without running them (``.ci/run`` installs the package).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from relaygate.store import CallRecord
from tests.servers import relaygate_serve, serve_in_thread
from tests.ui.seed import KEY_A, config, seed, sqlite_url

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Where the screenshots go: docs/images when asked for (RELAYGATE_UI_SCREENSHOTS=docs/images), else a temp dir.
SCREENSHOTS_ENV = "RELAYGATE_UI_SCREENSHOTS"
LIVE_THREAD = "support-chat-42"
LIVE_QUESTIONS = [
    "Hello, my order has not arrived. Write to me at ann.lee@example.com please.",
    "It was order 1234; my other address is ann@example.org.",
]


def require_chromium() -> str:
    missing = None
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Playwright is not installed (pip install -e '.[test]')"
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(missing + " (CI=true: the dashboard's browser tests must run)")
        pytest.skip(missing)
    return CHROMIUM


@dataclass
class Jaeger:
    """A fake trace viewer at /trace/{id}; /attack/* are another site's pages posting forged forms."""

    base_url: str = ""
    dashboard: str = ""
    traces: list[str] = field(default_factory=list)


def jaeger_app(state: Jaeger) -> Starlette:
    async def trace(request: Request) -> HTMLResponse:
        trace_id = request.path_params["trace_id"]
        state.traces.append(trace_id)
        return HTMLResponse(f"<!doctype html><title>Trace {trace_id}</title><h1>Trace {trace_id}</h1>")

    async def attack(request: Request) -> HTMLResponse:
        action, fields = {
            "logout": ("logout", {"csrf": "forged"}),
            "login": ("login", {"csrf": "forged", "key": KEY_A}),
        }[request.path_params["what"]]
        inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
        return HTMLResponse(
            f'<!doctype html><title>Win a prize</title><form id="f" method="post" action="{state.dashboard}/ui/'
            f'{action}">{inputs}<button>Win</button></form><script>document.getElementById("f").submit()</script>'
        )

    return Starlette(routes=[Route("/trace/{trace_id}", trace), Route("/attack/{what}", attack)])


@dataclass
class Dashboard:
    base_url: str
    calls: list[CallRecord]
    jaeger: Jaeger
    workdir: Path


def start_dashboard(tmp: Path) -> Iterator[Dashboard]:
    """``relaygate serve`` on a seeded SQLite ledger, with calls made through it into a thread of their own."""
    database = sqlite_url(tmp / "ledger.db")
    calls, _ = anyio.run(seed, database)
    state = Jaeger()
    with serve_in_thread(jaeger_app(state)) as jaeger_url:
        state.base_url = jaeger_url
        path = tmp / "relaygate.yaml"
        path.write_text(config(database, trace_url=jaeger_url + "/trace/{trace_id}", refresh_seconds=1))
        with relaygate_serve(["--config", str(path)], cwd=tmp) as base_url:
            state.dashboard = base_url
            history: list[dict[str, Any]] = []
            for question in LIVE_QUESTIONS:
                history.append({"role": "user", "content": question})
                reply = httpx.post(
                    f"{base_url}/v1/chat/completions",
                    headers={"authorization": f"Bearer {KEY_A}", "x-thread-id": LIVE_THREAD, "x-label": "support"},
                    json={"model": "smart", "messages": history, "extra": {"user": {"id": "ann"}}},
                    timeout=10,
                )
                assert reply.status_code == 200, reply.text
                history.append(reply.json()["choices"][0]["message"])
            yield Dashboard(base_url, calls, state, tmp)


def launch(playwright: Any) -> Browser:
    return playwright.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_FLAGS)  # type: ignore[no-any-return]


def sign_in(page: Page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/ui/login")
    page.get_by_label("API key or admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/ui/$"))


def screenshot_dir(fallback: Path) -> Path:
    wanted = os.environ.get(SCREENSHOTS_ENV)
    target = Path(wanted) if wanted else fallback
    target.mkdir(parents=True, exist_ok=True)
    return target


def shot(page: Page, folder: Path, name: str, *, full_page: bool = True) -> Path:
    path = folder / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 1000
    return path


def chromium_available() -> bool:
    return shutil.which("chromium") is not None
