"""The dashboard at ``/ui``: a pure-ASGI app in front of the gateway that answers its own paths.

It sits outside the API's key check (it has its own sign-in, by cookie) and outside tracing (its pages and
their refreshes are not model calls). Every other path goes on to the gateway untouched. Pages are rendered
on the server (``templates/``); htmx (shipped in ``static/``) refreshes their parts without a full reload.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import parse_qsl, quote

from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate._asgi import header, read_body, route_path
from relaygate.errors import GatewayError, PermissionDeniedError
from relaygate.keys import KeyRing
from relaygate.ledger import Ledger
from relaygate.limits.limiter import Limiter
from relaygate.middleware.auth import OPEN_PROJECT
from relaygate.routing import ModelRouter
from relaygate.settings import UiSettings
from relaygate.ui import assets, views
from relaygate.ui.render import Renderer
from relaygate.ui.sessions import ADMIN, LOGIN_COOKIE, LOGIN_TTL, OPEN, SESSION_COOKIE, Session, SessionSigner
from relaygate.ui.sources import Sources
from relaygate.ui.viewer import UiRequest, Viewer

__all__ = ["UiApp"]

logger = logging.getLogger("relaygate.ui")

Page = Callable[[UiRequest, Sources], Awaitable[Response]]
MAX_FORM_BYTES = 16 * 1024
MAX_KEY_LENGTH = 4096


class UiApp:
    """Serves the dashboard under ``/ui`` (below any mount point or ``root_path``) and passes on the rest.

    ``keys`` and ``admin_key_digest`` are the gateway's: a project key signs in to its projects, the admin key
    to all of them. A gateway with neither has an open dashboard, as its API is open.
    ``project_keys`` maps each configured project to the ids of its keys (for the limits of each key).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: UiSettings,
        router: ModelRouter,
        keys: KeyRing,
        admin_key_digest: bytes | None = None,
        ledger: Ledger | None = None,
        limiter: Limiter | None = None,
        project_keys: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.settings = settings
        self.keys = keys
        self.admin_key_digest = admin_key_digest
        self.open = not keys and admin_key_digest is None
        secret = settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_bytes(32)
        self.signer = SessionSigner(secret, ttl=settings.session_ttl, clock=clock)
        self.assets = assets.load()
        self.sources = Sources(
            settings=settings,
            renderer=Renderer(),
            router=router,
            ledger=ledger,
            limiter=limiter,
            project_keys=dict(project_keys or {}),
            asset_version=self.assets.version,
        )
        self.routes: list[tuple[re.Pattern[str], Page, bool]] = [
            (re.compile(pattern), page, admin_only)
            for pattern, page, admin_only in (
                (r"^/$", views.overview, False),
                (r"^/calls$", views.calls, False),
                (r"^/calls/(?P<id>[0-9a-fA-F-]{32,36})$", views.call, False),
                (r"^/threads$", views.threads, False),
                (r"^/threads/(?P<project>[^/]{1,128})/(?P<id>.{1,256})$", views.thread, False),
                (r"^/models$", views.models, True),
            )
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if not self.settings.enabled or not (path == "/ui" or path.startswith("/ui/")):
            await self.app(scope, receive, send)
            return
        req = UiRequest(
            scope=scope,
            method=scope["method"],
            path=path[3:] or "/",
            base=scope.get("root_path", "") + "/ui",
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            htmx=header(scope, b"hx-request") == "true",
            secure=scope.get("scheme") == "https",
        )
        try:
            response = await self._dispatch(req, receive)
        except GatewayError as error:
            response = views.error_page(req, self.sources, error.status, error.message)
        except Exception:
            logger.exception("dashboard: %s %s failed", req.method, scope["path"])
            response = views.error_page(req, self.sources, 503, "The dashboard could not read the ledger; try again.")
        await response(scope, receive, send)

    async def _dispatch(self, req: UiRequest, receive: Receive) -> Response:
        if req.path.startswith("/static/"):
            return assets.response(self.assets, req.path[len("/static/") :], req.scope)
        if req.method == "POST":
            body = await read_body(req.scope, receive, MAX_FORM_BYTES)
            req.form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if req.path == "/login":
            return await self._login(req)
        req.viewer = await self._viewer(req)
        if req.viewer is None:
            return self._to_login(req)
        if req.path == "/logout":
            return self._logout(req, req.viewer)
        for pattern, page, admin_only in self.routes:
            match = pattern.match(req.path)
            if match is None:
                continue
            if req.method not in ("GET", "HEAD"):
                return views.error_page(req, self.sources, 405, "Pages are read with GET.", {"allow": "GET, HEAD"})
            if admin_only and not req.viewer.admin:
                raise PermissionDeniedError("This page needs the admin key: sign in with it to see models and prices.")
            req.params = match.groupdict()
            return await page(req, self.sources)
        return views.error_page(req, self.sources, 404, "There is no such page.")

    # -- signing in and out ------------------------------------------------------------------------------

    async def _viewer(self, req: UiRequest) -> Viewer | None:
        if self.open:
            return Viewer(Session(OPEN, "", 0), await self._all_projects(), "")
        cookies = cookie_parser(header(req.scope, b"cookie") or "")
        session = self.signer.read(cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        if session.subject == ADMIN:
            if self.admin_key_digest is None:
                return None
            projects = await self._all_projects()
        else:
            key = self.keys.by_id(session.subject)
            if key is None:  # the key was removed from the config since
                return None
            projects = tuple(sorted(key.projects))
        return Viewer(session, projects, self.signer.csrf(session))

    async def _all_projects(self) -> tuple[str, ...]:
        # An open gateway puts its calls in project "default" (or the one they name).
        found = set(self.sources.project_keys) or {OPEN_PROJECT}
        ledger = self.sources.ledger
        if ledger is not None and ledger.running:
            found.update(await (await self.sources.store()).ledger_projects())
        return tuple(sorted(found))

    async def _login(self, req: UiRequest) -> Response:
        if self.open or (req.method == "GET" and await self._viewer(req) is not None):
            return RedirectResponse(req.base + "/", status_code=303)
        if req.method == "GET":
            return self._login_form(req)
        if req.method != "POST":
            return views.error_page(req, self.sources, 405, "Sign in with the form.", {"allow": "GET, POST"})
        nonce = cookie_parser(header(req.scope, b"cookie") or "").get(LOGIN_COOKIE)
        if not self.signer.check_login(nonce, req.form.get("csrf")):
            return self._login_form(req, "This form has expired or did not come from this page: sign in again.", 403)
        key = req.form.get("key", "").strip()
        subject = self._subject(key) if 0 < len(key) <= MAX_KEY_LENGTH else None
        if subject is None:
            return self._login_form(req, "That key is not a key of this gateway.", 401)
        token, session = self.signer.issue(subject)
        response = RedirectResponse(req.base + _safe_next(req.form.get("next")), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=self.signer.ttl, path=req.base, secure=req.secure,
            httponly=True, samesite="strict",
        )  # fmt: skip
        response.delete_cookie(LOGIN_COOKIE, path=req.base, secure=req.secure, httponly=True, samesite="strict")
        return response

    def _subject(self, key: str) -> str | None:
        digest = hashlib.sha256(key.encode()).digest()
        if self.admin_key_digest is not None and hmac.compare_digest(digest, self.admin_key_digest):
            return ADMIN
        found = self.keys.lookup(key)
        return found.id if found is not None else None

    def _login_form(self, req: UiRequest, problem: str | None = None, status: int = 200) -> Response:
        nonce = self.signer.login_nonce()
        response = views.page(
            req,
            self.sources,
            "login.html",
            status=status,
            csrf=self.signer.login_token(nonce),
            problem=problem,
            next=_safe_next(req.form.get("next") or req.query.get("next")),
            admin_enabled=self.admin_key_digest is not None,
        )
        response.set_cookie(
            LOGIN_COOKIE, nonce, max_age=LOGIN_TTL, path=req.base, secure=req.secure, httponly=True, samesite="strict"
        )
        return response

    def _logout(self, req: UiRequest, viewer: Viewer) -> Response:
        if req.method != "POST":
            return views.error_page(req, self.sources, 405, "Sign out with the button.", {"allow": "POST"})
        if not viewer.open:
            if not self.signer.check_csrf(viewer.session, req.form.get("csrf")):
                raise PermissionDeniedError("This form did not come from this dashboard: reload the page.")
            self.signer.revoke(viewer.session)
        response = RedirectResponse(req.base + "/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=req.base, secure=req.secure, httponly=True, samesite="strict")
        return response

    def _to_login(self, req: UiRequest) -> Response:
        query = req.scope.get("query_string", b"").decode("latin-1")
        target = req.path + (f"?{query}" if query else "")
        login = f"{req.base}/login" + (f"?next={_quote_next(target)}" if target != "/" else "")
        if req.htmx:
            # htmx follows this header with a full page load, rather than swapping the form into a part.
            return Response(status_code=401, headers={"hx-redirect": login})
        if req.method == "POST":
            raise PermissionDeniedError("Your session has ended: sign in again.")
        return RedirectResponse(login, status_code=303)


def _safe_next(target: str | None) -> str:
    """A path below the dashboard to go to after signing in; anything else (another site) is the overview."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 for c in target):
        return "/"
    return target


def _quote_next(target: str) -> str:
    return quote(target, safe="")
