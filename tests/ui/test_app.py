"""The dashboard over HTTP (no browser): sign-in, sessions and CSRF, what each key may see, mounting and root_path,
bad input, and its pages' answers. The browser tests (test_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from relaygate import Gateway
from relaygate.settings import ProjectSettings, Settings, UiSettings
from relaygate.store import CallRecord, MessageRecord
from relaygate.ui.sessions import SESSION_COOKIE, SessionSigner
from tests.ui.seed import ADMIN_KEY, KEY_A, KEY_B, SECRET, records

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC)
CALLS, MESSAGES = records(NOW)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "projects": [ProjectSettings(id="proj-a", keys=[KEY_A]), ProjectSettings(id="proj-b", keys=[KEY_B])],
        "admin_key": ADMIN_KEY,
        "database": "sqlite:///:memory:",
        "ui": UiSettings(trace_url="http://jaeger:16686/trace/{trace_id}", session_secret=SECRET),
        **overrides,
    }
    return Settings(**values)


async def seeded(gateway: Gateway, calls: list[CallRecord] = CALLS, messages: list[MessageRecord] = MESSAGES) -> None:
    assert gateway.ledger is not None
    await gateway.ledger.store.write(calls, messages)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gateway = Gateway(settings())
    async with gateway.lifespan():
        await seeded(gateway)
        yield gateway


def client(app: Any, *, root_path: str = "", base_url: str = "http://gateway") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, root_path=root_path), base_url=base_url)


def form_token(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]*)"', html)
    assert match is not None, html
    return match.group(1)


async def sign_in(http: httpx.AsyncClient, key: str, prefix: str = "") -> httpx.Response:
    form = await http.get(f"{prefix}/ui/login")
    assert form.status_code == 200
    return await http.post(f"{prefix}/ui/login", data={"csrf": form_token(form.text), "key": key})


async def test_pages_need_a_sign_in_and_the_key_never_goes_into_a_url(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        for path in ("/ui", "/ui/", "/ui/calls?model=mock/echo", "/ui/threads", "/ui/models"):
            response = await http.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/ui/login")
        assert (await http.get("/ui/calls?model=x")).headers["location"] == "/ui/login?next=%2Fcalls%3Fmodel%3Dx"
        form = await http.get("/ui/login")
        assert 'method="post"' in form.text and 'type="password"' in form.text
        signed = await http.post(
            "/ui/login", data={"csrf": form_token(form.text), "key": KEY_A, "next": "/calls?model=x"}
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == "/ui/calls?model=x"
        assert KEY_A not in signed.headers["location"] and KEY_A not in signed.headers["set-cookie"]
        page = await http.get("/ui/")
        assert page.status_code == 200 and KEY_A not in page.text


async def test_session_cookie_is_httponly_strict_scoped_and_secure_over_https(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        cookie = (await sign_in(http, KEY_A)).headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert "Secure" not in cookie
    async with client(gateway.app, base_url="https://gateway") as http:
        cookie = (await sign_in(http, KEY_A)).headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie


async def test_a_wrong_key_is_refused(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        for key in ("rg-not-a-key", "", KEY_A + "x", "x" * 5000):
            response = await sign_in(http, key)
            assert response.status_code == 401
            assert "not a key of this gateway" in response.text
            assert SESSION_COOKIE + "=" not in response.headers.get("set-cookie", "")
        assert (await http.get("/ui/")).status_code == 303


async def test_forged_posts_are_refused(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        await http.get("/ui/login")
        # A sign-in form that did not come from the page (no token, or another's) is refused, right key or not.
        for token in ("", "forged", form_token((await http.get("/ui/login")).text)[:-2] + "xx"):
            response = await http.post("/ui/login", data={"csrf": token, "key": ADMIN_KEY})
            assert response.status_code == 403
            assert "set-cookie" not in response.headers or SESSION_COOKIE + "=" not in response.headers["set-cookie"]
        await sign_in(http, ADMIN_KEY)
        page = await http.get("/ui/")
        token = form_token(page.text)
        for forged in ({}, {"csrf": "forged"}, {"csrf": token[:-1]}):
            response = await http.post("/ui/logout", data=forged)
            assert response.status_code == 403
        assert (await http.get("/ui/")).status_code == 200  # still signed in
        assert (await http.post("/ui/", data={"csrf": token})).status_code == 405
        out = await http.post("/ui/logout", data={"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert (await http.get("/ui/")).status_code == 303


async def test_a_signed_out_session_cannot_be_replayed(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        await sign_in(http, KEY_A)
        stolen = http.cookies[SESSION_COOKIE]
        await http.post("/ui/logout", data={"csrf": form_token((await http.get("/ui/")).text)})
    async with client(gateway.app) as other:
        other.cookies.set(SESSION_COOKIE, stolen)
        assert (await other.get("/ui/")).status_code == 303


async def test_sessions_expire_and_cannot_be_forged() -> None:
    now = [1_000_000.0]
    signer = SessionSigner(SECRET, ttl=60, clock=lambda: now[0])
    token, session = signer.issue("admin")
    assert signer.read(token) == session
    assert signer.check_csrf(session, signer.csrf(session)) and not signer.check_csrf(session, "x")
    payload, signature = token.split(".")
    other, _ = SessionSigner("another-secret-of-at-least-32-chars!!", ttl=60, clock=lambda: now[0]).issue("admin")
    assert signer.read(other) is None
    assert signer.read(payload + "." + signature[::-1]) is None
    assert signer.read(payload.replace("a", "b", 1) + "." + signature) is None
    assert signer.read("garbage") is None and signer.read(None) is None
    now[0] += 61
    assert signer.read(token) is None


async def test_a_session_ends_when_its_time_is_up_in_the_gateway() -> None:
    gateway = Gateway(settings(ui=UiSettings(session_ttl=60, session_secret=SECRET)))
    async with gateway.lifespan(), client(gateway.app) as http:
        await sign_in(http, KEY_A)
        assert (await http.get("/ui/")).status_code == 200
        # A cookie signed with the same secret whose hour is up (issued at the epoch, for 60 s).
        old, _ = SessionSigner(SECRET, ttl=60, clock=lambda: 0.0).issue("admin")
        http.cookies.clear()
        http.cookies.set(SESSION_COOKIE, old)
        assert (await http.get("/ui/")).status_code == 303


async def test_a_project_key_sees_only_its_project(gateway: Gateway) -> None:
    b_call = next(c for c in CALLS if c.project_id == "proj-b")
    b_thread = next(c.thread_id for c in CALLS if c.project_id == "proj-b" and c.thread_id)
    async with client(gateway.app) as http:
        await sign_in(http, KEY_A)
        calls = (await http.get("/ui/calls")).text
        ids = set(re.findall(r'data-call-id="([^"]+)"', calls))
        assert ids and ids <= {str(c.id) for c in CALLS if c.project_id == "proj-a"}
        assert "proj-b" not in (await http.get("/ui/threads")).text
        assert (await http.get(f"/ui/calls/{b_call.id}")).status_code == 404
        assert (await http.get(f"/ui/threads/proj-b/{b_thread}")).status_code == 404
        assert (await http.get("/ui/?project=proj-b")).status_code == 404
        assert (await http.get("/ui/calls?project=proj-b")).status_code == 404
        assert (await http.get("/ui/models")).status_code == 403
        assert "Models &amp; prices" not in (await http.get("/ui/")).text


async def test_the_admin_key_sees_every_project_and_the_models(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        await sign_in(http, ADMIN_KEY)
        ids = set(re.findall(r'data-call-id="([^"]+)"', (await http.get("/ui/calls")).text))
        assert {c.project_id for c in CALLS if str(c.id) in ids} == {"proj-a", "proj-b"}
        b_call = next(c for c in CALLS if c.project_id == "proj-b")
        assert (await http.get(f"/ui/calls/{b_call.id}")).status_code == 200
        models = await http.get("/ui/models")
        assert models.status_code == 200 and "echo, text-embedding, image" in models.text
        assert "openai/gpt-4o-mini" in models.text and "catalogue" in models.text


async def test_overview_totals_are_the_management_apis(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        await sign_in(http, KEY_A)
        for period in ("last_hour", "last_day", "last_week"):
            page = (await http.get(f"/ui/?period={period}")).text
            start = int(re.search(r'data-start-us="(\d+)"', page).group(1))  # type: ignore[union-attr]
            end = int(re.search(r'data-end-us="(\d+)"', page).group(1))  # type: ignore[union-attr]
            shown = dict(re.findall(r'data-figure="(\w+)" data-value="([^"]+)"', page))
            api = await http.post(
                "/v1/usage/total",
                headers={"authorization": f"Bearer {KEY_A}"},
                json={"start_time_us": start, "end_time_us": end},
            )
            total = api.json()
            assert int(shown["requests"]) == total["requests"] > 0
            assert float(shown["cost"]) == total["total_cost"]
            assert int(shown["errors"]) == total["errors"]
            assert int(shown["input_tokens"]) == total["input_tokens"]
            assert int(shown["output_tokens"]) == total["output_tokens"]
            assert int(shown["total_tokens"]) == total["total_tokens"]


async def test_mounted_pages_link_below_the_mount_point(gateway: Gateway) -> None:
    host = Starlette(routes=[Mount("/llm", app=gateway.app)])
    async with client(host) as http:
        assert (await http.get("/llm/ui/")).headers["location"] == "/llm/ui/login"
        signed = await sign_in(http, KEY_A, prefix="/llm")
        assert signed.headers["location"] == "/llm/ui/" and "Path=/llm/ui" in signed.headers["set-cookie"]
        page = (await http.get("/llm/ui/")).text
        assert 'href="/llm/ui/calls"' in page and 'src="/llm/ui/static/htmx.min.js?v=' in page
        assert not re.search(r'(href|src|action|hx-get)="/ui', page)
        static = re.search(r'src="(/llm/ui/static/app.js\?v=\w+)"', page).group(1)  # type: ignore[union-attr]
        asset = await http.get(static)
        assert asset.status_code == 200 and "drawCharts" in asset.text


async def test_behind_a_proxy_every_link_carries_the_root_path(gateway: Gateway) -> None:
    # uvicorn --root-path /gw: the scope's path holds the prefix, root_path names it.
    async with client(gateway.app, root_path="/gw") as http:
        form = await http.get("/gw/ui/login")
        assert 'action="/gw/ui/login"' in form.text
        signed = await http.post("/gw/ui/login", data={"csrf": form_token(form.text), "key": ADMIN_KEY})
        assert signed.headers["location"] == "/gw/ui/"
        page = (await http.get("/gw/ui/calls")).text
        assert not re.search(r'(href|src|action|hx-get)="/ui', page)
        assert re.search(r'href="/gw/ui/calls/[0-9a-f-]{36}"', page)


async def test_open_gateway_has_an_open_dashboard() -> None:
    gateway = Gateway(Settings(database="sqlite:///:memory:"))
    async with gateway.lifespan(), client(gateway.app) as http:
        chat = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
        reply = await http.post("/v1/chat/completions", json=chat)
        assert reply.status_code == 200
        page = await http.get("/ui/calls")
        assert page.status_code == 200 and "no keys" in page.text and "mock/echo" in page.text
        assert (await http.get("/ui/login")).status_code == 303


async def test_htmx_requests_get_the_part_and_a_redirect_when_signed_out(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        response = await http.get("/ui/calls", headers={"hx-request": "true"})
        assert response.status_code == 401 and response.headers["hx-redirect"] == "/ui/login?next=%2Fcalls"
        await sign_in(http, KEY_A)
        part = await http.get("/ui/calls?status=error", headers={"hx-request": "true"})
        assert part.status_code == 200 and part.text.lstrip().startswith('<section id="calls"')
        assert "<html" not in part.text
        rows = re.findall(r'<span class="badge (ok|bad)"', part.text)
        assert rows and set(rows) == {"bad"}


async def test_bad_input_is_a_clear_page_never_a_500(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        await sign_in(http, ADMIN_KEY)
        for path in (
            "/ui/?period=forever",
            "/ui/?period=custom&from=yesterday",
            "/ui/?period=custom&from=2025-01-02&to=2025-01-01",
            "/ui/?bucket=minute",
            "/ui/calls?status=teapot",
            "/ui/calls?before=nonsense",
            "/ui/calls?from=not-a-date",
            "/ui/threads?before=%%%",
            "/ui/threads/proj-a/x?offset=-1",
            f"/ui/calls?user={'u' * 300}",
        ):
            response = await http.get(path)
            assert response.status_code == 400, path
            assert 'class="problem"' in response.text
        assert (await http.get("/ui/calls/00000000-0000-0000-0000-000000000000")).status_code == 404
        assert (await http.get("/ui/threads/proj-a/no-such-thread")).status_code == 404
        assert (await http.get("/ui/nothing-here")).status_code == 404
        assert (await http.get("/ui/static/nothing.js")).status_code == 404


async def test_pages_carry_a_strict_content_security_policy(gateway: Gateway) -> None:
    async with client(gateway.app) as http:
        await sign_in(http, ADMIN_KEY)
        for path in ("/ui/", "/ui/calls", "/ui/threads", "/ui/models", f"/ui/calls/{CALLS[0].id}"):
            response = await http.get(path)
            assert response.status_code == 200, path
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
            assert response.headers["cache-control"] == "no-store"
            assert "<script>" not in response.text and " style=" not in response.text
            assert " onclick" not in response.text


async def test_prompts_are_shown_as_text_never_as_markup(gateway: Gateway) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    call = CALLS[0].__class__(
        project_id="proj-a", trace_id="ab" * 16, started_at=NOW - timedelta(minutes=1), ended_at=NOW,
        thread_id=evil, label=evil, user_id=evil, model="echo", provider="mock",
    )  # fmt: skip
    message = MessageRecord(project_id="proj-a", thread_id=evil, role="user", created_at=call.started_at,
                            content=evil, call_id=call.id)  # fmt: skip
    await seeded(gateway, [call], [message])
    async with client(gateway.app) as http:
        await sign_in(http, KEY_A)
        thread = "/ui/threads/proj-a/" + quote(evil, safe="")
        for path in ("/ui/calls", "/ui/threads", f"/ui/calls/{call.id}", thread, "/ui/?period=last_hour"):
            page = await http.get(path)
            assert page.status_code == 200, path
            assert "<script>alert" not in page.text and "<img src=x" not in page.text


async def test_a_gateway_without_its_ledger_says_so() -> None:
    gateway = Gateway(settings(database=None))
    async with gateway.lifespan(), client(gateway.app) as http:
        await sign_in(http, KEY_A)
        response = await http.get("/ui/calls")
        assert response.status_code == 503 and "database: null" in response.text


async def test_the_dashboard_can_be_turned_off() -> None:
    gateway = Gateway(settings(ui=UiSettings(enabled=False)))
    async with gateway.lifespan(), client(gateway.app) as http:
        response = await http.get("/ui/login")
        assert response.status_code in (401, 404) and response.headers["content-type"] == "application/json"


async def test_trace_url_is_checked_and_filled() -> None:
    assert UiSettings(trace_url="http://jaeger:16686/trace/{trace_id}").trace_link("ab12") == (
        "http://jaeger:16686/trace/ab12"
    )
    assert UiSettings().trace_link("ab12") is None
    assert UiSettings(trace_url="http://t/{trace_id}").trace_link("not hex!") is None
    for bad in ("http://jaeger:16686/trace/", "javascript:alert(1)//{trace_id}", "ftp://x/{trace_id}"):
        with pytest.raises(ValueError):
            UiSettings(trace_url=bad)


async def test_many_pages_at_once_answer() -> None:
    gateway = Gateway(settings())
    async with gateway.lifespan():
        await seeded(gateway)
        async with client(gateway.app) as http:
            await sign_in(http, ADMIN_KEY)
            statuses: list[int] = []

            async def fetch(path: str) -> None:
                statuses.append((await http.get(path)).status_code)

            async with anyio.create_task_group() as group:
                for path in ["/ui/", "/ui/calls", "/ui/threads", "/ui/models"] * 5:
                    group.start_soon(fetch, path)
            assert statuses == [200] * 20
