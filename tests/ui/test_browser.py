"""The dashboard in headless Chromium (Debian's package, through Playwright) against ``relaygate serve`` with a
seeded ledger: signing in with a project key and the admin key, totals against the management API, filtering
calls and following a trace, reading a thread, refusals, freshness, and how it looks (screenshots into the docs
with RELAYGATE_UI_SCREENSHOTS=docs/images)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.ui.browser import (
    LIVE_THREAD,
    Dashboard,
    launch,
    require_chromium,
    screenshot_dir,
    shot,
    sign_in,
    start_dashboard,
)
from tests.ui.seed import ADMIN_KEY, KEY_A, KEY_B

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Contrast of a few texts against their background, computed in the page from the colours it renders.
CONTRAST_JS = """
(selectors) => {
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/\\d+(\\.\\d+)?/g).map(Number);
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const bg = getComputedStyle(el).backgroundColor;
      if (bg && !bg.startsWith('rgba(0, 0, 0, 0)') && bg !== 'transparent') return bg;
    }
    return 'rgb(255, 255, 255)';
  };
  return selectors.map((s) => {
    const el = document.querySelector(s);
    if (!el) return [s, null];
    const [a, b] = [lum(getComputedStyle(el).color), lum(background(el))];
    return [s, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
}
"""


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    require_chromium()
    yield from start_dashboard(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    # A CSP violation or a script error shows up here: the pages must have none.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    unexpected = [e for e in errors if "status of 40" not in e]  # refusals the tests ask for
    assert not unexpected, unexpected


def api_total(base_url: str, key: str, start_us: int, end_us: int) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/v1/usage/total",
        headers={"authorization": f"Bearer {key}"},
        json={"start_time_us": start_us, "end_time_us": end_us},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def shown_totals(page: Page) -> tuple[dict[str, str], int, int]:
    """The overview's totals and window, read at once (the part is refreshed every second)."""
    found = page.evaluate(
        """() => { const s = document.getElementById('overview');
                   const figures = {};
                   for (const e of s.querySelectorAll('[data-figure][data-value]')) {
                     figures[e.dataset.figure] = e.dataset.value;
                   }
                   return [figures, Number(s.dataset.startUs), Number(s.dataset.endUs)]; }"""
    )
    return found[0], int(found[1]), int(found[2])


def test_a_wrong_key_is_refused(dashboard: Dashboard, page: Page, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{dashboard.base_url}/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    shot(page, shots, "login")
    page.get_by_label("API key or admin key").fill("rg-this-is-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not a key of this gateway")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    assert "rg-this-is-not-a-key" not in page.url
    assert not [c for c in page.context.cookies() if c["name"] == "relaygate_ui"]
    page.goto(f"{dashboard.base_url}/ui/calls")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))


def test_a_project_key_sees_only_its_project(dashboard: Dashboard, page: Page) -> None:
    from playwright.sync_api import expect

    sign_in(page, dashboard.base_url, KEY_A)
    cookie = next(c for c in page.context.cookies() if c["name"] == "relaygate_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and KEY_A not in cookie["value"]
    expect(page.get_by_role("navigation", name="Dashboard pages")).not_to_contain_text("Models")
    expect(page.locator("#f-project")).to_have_count(0)
    page.get_by_role("link", name="Calls", exact=True).click()
    expect(page.locator("table.calls tbody tr").first).to_be_visible()
    rows = page.locator("table.calls tbody tr[data-call-id]")
    ids = set(rows.evaluate_all("rows => rows.map(r => r.dataset.callId)"))
    mine = {str(c.id) for c in dashboard.calls if c.project_id == "proj-a"}
    theirs = {str(c.id) for c in dashboard.calls if c.project_id == "proj-b"}
    assert ids and not ids & theirs and len(ids - mine) <= 2  # the two calls made live are proj-a's too
    page.get_by_role("link", name="Threads", exact=True).click()
    hrefs = page.locator("#threads tbody a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs and all("/ui/threads/proj-a/" in h for h in hrefs)
    other = next(c for c in dashboard.calls if c.project_id == "proj-b")
    page.goto(f"{dashboard.base_url}/ui/calls/{other.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    page.goto(f"{dashboard.base_url}/ui/models")
    expect(page.get_by_role("alert")).to_contain_text("needs the admin key")


def test_the_admin_key_sees_every_project(dashboard: Dashboard, page: Page, shots: Path) -> None:
    from playwright.sync_api import expect

    sign_in(page, dashboard.base_url, ADMIN_KEY)
    expect(page.locator("#f-project option")).to_have_text(["All projects", "proj-a", "proj-b"])
    expect(page.locator("#overview .plot canvas")).to_have_count(4)  # drawn by uPlot, and again after each refresh
    page.wait_for_timeout(2500)
    expect(page.locator("#overview .plot canvas")).to_have_count(4)
    shot(page, shots, "overview")
    page.get_by_role("link", name="Calls", exact=True).click()
    projects = set(page.locator("table.calls tbody tr td:nth-child(2)").all_inner_texts())
    assert projects == {"proj-a", "proj-b"}
    page.get_by_role("link", name="Models & prices").click()
    expect(page.get_by_role("heading", name="Models and prices")).to_be_visible()
    smart = page.locator("table", has=page.locator("caption", has_text="smart"))
    expect(smart.locator("tbody tr")).to_have_count(2)
    expect(smart).to_contain_text("mock/echo")
    expect(smart.locator(".badge").first).to_have_text("closed")
    expect(page.get_by_role("region", name="Prices")).to_contain_text("openai/gpt-4o-mini")
    shot(page, shots, "models")


def test_the_overview_totals_equal_the_management_apis(dashboard: Dashboard, page: Page) -> None:
    from playwright.sync_api import expect

    sign_in(page, dashboard.base_url, KEY_A)
    for period in ("last_day", "last_week"):
        page.locator("#f-period").select_option(period)
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(f"period={period}"))
        shown, start, end = shown_totals(page)
        total = api_total(dashboard.base_url, KEY_A, start, end)
        assert int(shown["requests"]) == total["requests"] > 0
        assert float(shown["cost"]) == total["total_cost"]
        assert int(shown["errors"]) == total["errors"]
        for name in ("input_tokens", "output_tokens", "total_tokens"):
            assert int(shown[name]) == total[name]
    # The admin's "all projects" is the sum of each project's figures.
    page.context.clear_cookies()
    sign_in(page, dashboard.base_url, ADMIN_KEY)
    page.locator("#f-period").select_option("last_week")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile("period=last_week"))
    shown, start, end = shown_totals(page)
    a, b = api_total(dashboard.base_url, KEY_A, start, end), api_total(dashboard.base_url, KEY_B, start, end)
    assert int(shown["requests"]) == a["requests"] + b["requests"]
    assert float(shown["cost"]) == pytest.approx(a["total_cost"] + b["total_cost"], abs=1e-9)
    assert int(shown["total_tokens"]) == a["total_tokens"] + b["total_tokens"]


def test_filter_calls_open_one_and_follow_its_trace(dashboard: Dashboard, page: Page, shots: Path) -> None:
    from playwright.sync_api import expect

    sign_in(page, dashboard.base_url, KEY_A)
    page.get_by_role("link", name="Calls", exact=True).click()
    page.get_by_label("Model").fill("openai/gpt-4o-mini")
    page.get_by_label("Status").select_option("ok")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"model=openai%2Fgpt-4o-mini.*status=ok"))
    rows = page.locator("table.calls tbody tr[data-call-id]")
    expected = [c for c in dashboard.calls if c.project_id == "proj-a" and c.model == "gpt-4o-mini" and not c.failed]
    expect(rows).to_have_count(len(expected))
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.callId)")) == {str(c.id) for c in expected}
    assert all("openai/gpt-4o-mini" in text for text in rows.locator("td:nth-child(2)").all_inner_texts())
    shot(page, shots, "calls")
    # Failed calls of one user, then one of them opened.
    page.get_by_label("Model").fill("")
    page.get_by_label("Status").select_option("error")
    page.get_by_label("User").fill("ada")
    page.get_by_role("button", name="Filter").click()
    failed = [c for c in dashboard.calls if c.project_id == "proj-a" and c.failed and c.user_id == "ada"]
    expect(rows).to_have_count(len(failed))
    call = next(c for c in sorted(dashboard.calls, key=lambda c: c.started_at, reverse=True) if c in failed)
    rows.first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(str(call.id))
    for heading in ("Attempts", "Guards", "Figures"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.get_by_role("table", name="Tokens by kind")).to_contain_text(f"{call.prompt_tokens:,}")
    with page.context.expect_page() as opened:
        page.get_by_role("link", name=re.compile("Open the trace")).click()
    trace = opened.value
    trace.wait_for_load_state()
    assert trace.url == f"{dashboard.jaeger.base_url}/trace/{call.trace_id}"
    expect(trace.get_by_role("heading")).to_have_text(f"Trace {call.trace_id}")
    assert call.trace_id in dashboard.jaeger.traces
    trace.close()
    # A call that was retried shows its attempts.
    retried = next(c for c in dashboard.calls if c.project_id == "proj-a" and c.attempts)
    page.goto(f"{dashboard.base_url}/ui/calls/{retried.id}")
    expect(page.locator("section:has(#attempts) tbody tr")).to_have_count(len(retried.attempts))
    shot(page, shots, "call")


def test_open_a_thread_and_read_its_messages(dashboard: Dashboard, page: Page, shots: Path) -> None:
    from playwright.sync_api import expect

    sign_in(page, dashboard.base_url, KEY_A)
    page.get_by_role("link", name="Threads", exact=True).click()
    shot(page, shots, "threads")
    page.locator("#threads").get_by_role("link", name=re.compile("Hello, my order")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(LIVE_THREAD)
    messages = page.locator("ol.messages > li")
    expect(messages).to_have_count(4)
    expect(messages.nth(0)).to_contain_text("Hello, my order has not arrived. Write to me at [EMAIL] please.")
    expect(messages.nth(1)).to_contain_text("relaygate mock reply to")
    expect(messages.nth(2)).to_contain_text("my other address is [EMAIL]")
    expect(page.locator("mark.redaction").first).to_have_text("[EMAIL]")
    expect(page.locator("ol.messages")).not_to_contain_text("example.com")
    expect(page.locator("ol.messages")).to_contain_text("no_pii redacted")
    expect(page.locator('[data-figure="turns"]')).to_have_text("2")
    shot(page, shots, "thread")


def test_forged_form_posts_are_refused(dashboard: Dashboard, page: Page) -> None:
    from playwright.sync_api import expect

    sign_in(page, dashboard.base_url, ADMIN_KEY)
    # Another site's page that posts a sign-out form to the dashboard: refused, and the session stays.
    page.goto(f"{dashboard.jaeger.base_url}/attack/logout")
    expect(page.get_by_role("alert")).to_contain_text("did not come from this dashboard")
    page.goto(f"{dashboard.base_url}/ui/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    # A form forged in the dashboard's own page (a token it never issued) fares no better.
    page.evaluate(
        """() => { const f = document.querySelector('form[action$="/logout"]');
                   f.querySelector('[name=csrf]').value = 'forged'; f.submit(); }"""
    )
    expect(page.get_by_role("alert")).to_contain_text("did not come from this dashboard")
    # Another site signing the browser in with its own key (login CSRF): refused.
    page.context.clear_cookies()
    page.goto(f"{dashboard.jaeger.base_url}/attack/login")
    expect(page.get_by_role("alert")).to_contain_text("did not come from this page")
    assert not [c for c in page.context.cookies() if c["name"] == "relaygate_ui"]


def test_pages_refresh_without_a_reload(dashboard: Dashboard, page: Page) -> None:
    from playwright.sync_api import expect

    sign_in(page, dashboard.base_url, KEY_A)
    page.evaluate("() => { window.__notReloaded = true; }")
    before = int(page.locator('#overview [data-figure="requests"]').get_attribute("data-value") or 0)
    reply = httpx.post(
        f"{dashboard.base_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY_A}"},
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "one more"}]},
    )
    assert reply.status_code == 200
    expect(page.locator('#overview [data-figure="requests"]')).to_have_attribute("data-value", str(before + 1))
    assert page.evaluate("() => window.__notReloaded") is True
    page.get_by_role("link", name="Calls", exact=True).click()
    page.evaluate("() => { window.__notReloaded = true; }")
    first = page.locator("table.calls tbody tr").first.get_attribute("data-call-id")
    httpx.post(
        f"{dashboard.base_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY_A}"},
        json={"model": "mock/echo", "messages": [{"role": "user", "content": "and another"}]},
    )
    expect(page.locator("table.calls tbody tr").first).not_to_have_attribute("data-call-id", first or "")
    assert page.evaluate("() => window.__notReloaded") is True


def test_usable_by_keyboard_on_a_phone_and_in_dark_mode(dashboard: Dashboard, browser: Browser, shots: Path) -> None:
    from playwright.sync_api import expect

    for scheme, size in (("light", {"width": 1280, "height": 860}), ("dark", {"width": 1280, "height": 860})):
        context = browser.new_context(viewport=size, color_scheme=scheme)  # type: ignore[arg-type]
        page = context.new_page()
        sign_in(page, dashboard.base_url, ADMIN_KEY)
        # Landmarks, and every form field named by a label.
        for role in ("banner", "navigation", "main", "contentinfo"):
            expect(page.get_by_role(role).first).to_be_visible()
        unlabeled = page.evaluate(
            "() => [...document.querySelectorAll('input:not([type=hidden]), select')]"
            ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)"
        )
        assert unlabeled == []
        for selector, ratio in page.evaluate(CONTRAST_JS, ["body", ".muted", "nav a", ".badge.ok", "th", "caption"]):
            assert ratio is None or ratio >= 4.5, (scheme, selector, ratio)
        if scheme == "dark":
            background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(18, 20, 23)"
            shot(page, shots, "overview-dark", full_page=False)
        # The keyboard: the first Tab reaches the skip link, which moves to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("() => document.activeElement.id") == "main"
        context.close()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    sign_in(page, dashboard.base_url, KEY_A)
    for path in ("/ui/", "/ui/calls", "/ui/threads"):
        page.goto(dashboard.base_url + path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)  # wide tables scroll in their own box, the page does not
    page.goto(dashboard.base_url + "/ui/")
    shot(page, shots, "overview-phone", full_page=False)
    phone.close()


def test_static_files_are_served_from_the_package(dashboard: Dashboard) -> None:
    page = httpx.get(f"{dashboard.base_url}/ui/login").text
    for name in ("htmx.min.js", "uPlot.iife.min.js", "app.js", "app.css", "uPlot.min.css"):
        match = re.search(rf"/ui/static/{re.escape(name)}\?v=(\w+)", page)
        assert match is not None, name
        response = httpx.get(f"{dashboard.base_url}/ui/static/{name}?v={match.group(1)}")
        assert response.status_code == 200 and len(response.content) > 500
        assert "immutable" in response.headers["cache-control"]
        again = httpx.get(f"{dashboard.base_url}/ui/static/{name}", headers={"if-none-match": response.headers["etag"]})
        assert again.status_code == 304
    assert "//cdn" not in page and "https://" not in page


def test_every_page_answers_the_admin_in_a_burst(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.base_url) as http:
        form = http.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        assert http.post("/ui/login", data={"csrf": token, "key": ADMIN_KEY}).status_code == 303
        for path in ("/ui/", "/ui/?period=last_year", "/ui/calls", "/ui/threads", "/ui/models") * 3:
            assert http.get(path).status_code == 200
