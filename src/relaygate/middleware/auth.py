"""API keys: ``Authorization: Bearer <key>`` for the API, ``X-Admin-Key`` for admin routes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate._asgi import header, route_path
from relaygate.context import get_context
from relaygate.errors import AuthenticationError, GatewayError, InvalidRequestError, PermissionDeniedError, send_error
from relaygate.keys import KeyRing

__all__ = ["OPEN_PROJECT", "AuthMiddleware"]

# The project of requests to a gateway that has no keys configured (the embedded default).
OPEN_PROJECT = "default"
# What a 401 for a missing or unknown API key challenges the client with (RFC 6750; MCP clients read it).
CHALLENGE = (b"www-authenticate", b'Bearer realm="relaygate"')
INVALID_KEY_CHALLENGE = (b"www-authenticate", b'Bearer realm="relaygate", error="invalid_token"')


class AuthMiddleware:
    """Checks the caller's key and its right to the project; sets ``ctx.key`` and ``ctx.project_id``.

    Keys are looked up by their SHA-256 digest (:class:`~relaygate.keys.KeyRing`). A missing or unknown
    key is a 401; a key that does not belong to the requested project is a 403. With no project named
    (see :class:`~relaygate.middleware.projects.ProjectScopeMiddleware`), a key of exactly one project
    means that project. A 401 for the API key carries ``WWW-Authenticate: Bearer`` (MCP clients read it).
    Paths under ``admin_prefixes`` need ``X-Admin-Key`` instead, and are refused with a 403 when no admin
    key is configured. ``public_paths`` (``/health``) need nothing.
    ``open_paths`` (the catalogue, with ``public_catalogue: true``) need no key: a request without one
    goes on with no project (``ctx.project_id`` is ``None``); one with a key is checked as anywhere else.

    With an empty key ring every API request is let through into project ``default`` (or the one it
    names): that is the embedded default for a gateway on a developer's machine.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyRing,
        admin_key_digest: bytes | None = None,
        public_paths: Collection[str] = ("/health",),
        admin_prefixes: tuple[str, ...] = ("/admin",),
        open_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.keys = keys
        self.admin_key_digest = admin_key_digest
        self.public_paths = frozenset(public_paths)
        self.open_paths = frozenset(open_paths)
        self.admin_prefixes = admin_prefixes
        # The admin paths: a prefix itself (a set), or under it (one startswith of a tuple).
        self._admin_paths = frozenset(admin_prefixes)
        self._admin_under = tuple(prefix + "/" for prefix in admin_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        admin = path in self._admin_paths or path.startswith(self._admin_under)
        try:
            if path in self.public_paths:
                pass
            elif path in self.open_paths and self.keys and header(scope, b"authorization") is None:
                get_context(scope).project_id = None  # no key: no project's view, whatever the path named
            elif admin:
                self._check_admin(scope)
            else:
                self._check_key(scope)
            # What the layers outside found wrong with the headers, told only to an authenticated caller.
            refusal = get_context(scope).refusal
            if refusal is not None:
                raise refusal
        except GatewayError as error:
            await send_error(send, error, admin=admin)  # the admin API's errors carry seed 003's code and message
            return
        await self.app(scope, receive, send)

    def _check_admin(self, scope: Scope) -> None:
        if self.admin_key_digest is None:
            raise PermissionDeniedError("The admin API is disabled: no admin_key is configured.")
        presented = header(scope, b"x-admin-key")
        if not presented:
            raise AuthenticationError("Missing admin key. Send it in the X-Admin-Key header.")
        digest = hashlib.sha256(presented.encode()).digest()
        if not hmac.compare_digest(digest, self.admin_key_digest):
            raise AuthenticationError("Incorrect admin key provided.")
        get_context(scope).is_admin = True

    def _check_key(self, scope: Scope) -> None:
        ctx = get_context(scope)
        if not self.keys:
            ctx.project_id = ctx.project_id or OPEN_PROJECT
            return
        authorization = header(scope, b"authorization")
        scheme, _, presented = (authorization or "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise AuthenticationError(
                "You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>'.",
                headers=[CHALLENGE],
            )
        key = self.keys.lookup(presented)
        if key is None:
            raise AuthenticationError("Incorrect API key provided.", headers=[INVALID_KEY_CHALLENGE])
        ctx.key = key
        if ctx.project_id is None:
            if len(key.projects) != 1:
                raise InvalidRequestError(
                    "This key belongs to several projects: name one with X-Project-Id or /{project_id}/v1/.",
                    param="X-Project-Id",
                    code="project_required",
                )
            (ctx.project_id,) = key.projects
        elif ctx.project_id not in key.projects:
            raise PermissionDeniedError(f"This key may not be used for project '{ctx.project_id}'.")
