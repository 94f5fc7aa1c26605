"""The dashboard under ``relaygate serve``: several workers share one session secret, and behind a proxy's
prefix (``--root-path``) every link carries it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.servers import relaygate_serve

CONFIG = """\
admin_key: rg-serve-admin-key
projects:
  - id: p1
    keys: [rg-serve-key-p1]
"""
# Each request on a connection of its own, so that they land on both workers (uvicorn's workers share the
# socket; the kernel hands most connections to one of them, some to the other).
ROUNDS = 30


def sign_in(base_url: str) -> httpx.Response:
    form = httpx.get(f"{base_url}/ui/login")
    assert 'action="/llm/ui/login"' in form.text
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    # Cookies by value: they are set for /llm/ui, the path the proxy's clients see, not the stripped one used here.
    login = {"relaygate_ui_login": form.cookies["relaygate_ui_login"]}
    return httpx.post(f"{base_url}/ui/login", data={"csrf": token, "key": "rg-serve-admin-key"}, cookies=login)


def test_a_sign_in_holds_on_every_worker_behind_a_prefix(tmp_path: Path) -> None:
    config = tmp_path / "relaygate.yaml"
    config.write_text(CONFIG)
    env = {"RELAYGATE_UI_SESSION_SECRET": ""}  # none given: serve makes one for all its workers
    args = ["--config", str(config), "--workers", "2", "--root-path", "/llm"]
    with relaygate_serve(args, cwd=tmp_path, env=env) as base_url:
        signed = [sign_in(base_url) for _ in range(ROUNDS)]
        assert [r.status_code for r in signed] == [303] * ROUNDS
        assert signed[0].headers["location"] == "/llm/ui/"
        session = signed[0].cookies["relaygate_ui"]
        pages = [httpx.get(f"{base_url}/ui/calls", cookies={"relaygate_ui": session}) for _ in range(ROUNDS)]
        assert [p.status_code for p in pages] == [200] * ROUNDS
        assert 'href="/llm/ui/threads"' in pages[0].text
