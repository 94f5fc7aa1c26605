"""Dashboard sessions: signed cookies that name who signed in, never the key, and the CSRF tokens tied to them.

A session cookie is ``payload.signature``: the payload (base64url JSON) holds the subject (``admin``, a key's id
such as ``key_1a2b3c4d5e6f``, or ``open`` on a gateway without keys), a random nonce and the expiry; the
signature is HMAC-SHA256 over it with the session secret. Nothing in it is secret, and nothing in it can be
changed without the secret. Every request checks the signature, the expiry and that the key still exists
(a key removed from the config ends its sessions at the next restart).

CSRF: every form and every htmx request carries a token derived from the session's nonce (HMAC with the
secret, under a label of its own), checked on every POST; so is the sign-in form, with the nonce of a short-
lived cookie set when the form is shown, so that another site cannot sign a browser in either. The cookies
are HttpOnly and SameSite=Strict (and Secure over https), which already keeps other sites' posts from
carrying them. Signing out revokes the nonce in this process; elsewhere the session ends at its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

__all__ = ["ADMIN", "LOGIN_COOKIE", "OPEN", "SESSION_COOKIE", "Session", "SessionSigner"]

SESSION_COOKIE = "relaygate_ui"
LOGIN_COOKIE = "relaygate_ui_login"
ADMIN = "admin"
OPEN = "open"
LOGIN_TTL = 3600
MAX_TOKEN_LENGTH = 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in (``admin``, a key id, or ``open``), until when, and the nonce its tokens hang on."""

    subject: str
    nonce: str
    expires: int

    @property
    def admin(self) -> bool:
        return self.subject in (ADMIN, OPEN)


class SessionSigner:
    """Issues and checks session cookies and CSRF tokens with one secret; see the module docstring."""

    def __init__(self, secret: bytes | str, *, ttl: int, clock: Callable[[], float] = time.time) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        # Derived keys per use: a token of one kind never passes as another.
        self._keys = {use: hmac.new(raw, use.encode(), hashlib.sha256).digest() for use in ("session", "csrf", "login")}
        self.ttl = ttl
        self.clock = clock
        self._revoked: dict[str, int] = {}

    def _mac(self, use: str, data: str) -> str:
        return _b64(hmac.new(self._keys[use], data.encode(), hashlib.sha256).digest())

    def issue(self, subject: str) -> tuple[str, Session]:
        session = Session(subject, secrets.token_urlsafe(18), int(self.clock()) + self.ttl)
        payload = _b64(orjson.dumps({"s": session.subject, "n": session.nonce, "e": session.expires}))
        return f"{payload}.{self._mac('session', payload)}", session

    def read(self, token: str | None) -> Session | None:
        """The session of a cookie value, or ``None`` when it is missing, forged, expired or signed out."""
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        if not hmac.compare_digest(signature, self._mac("session", payload)):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            session = Session(str(data["s"]), str(data["n"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= self.clock() or session.nonce in self._revoked:
            return None
        return session

    def revoke(self, session: Session) -> None:
        now = self.clock()
        self._revoked = {nonce: until for nonce, until in self._revoked.items() if until > now}
        self._revoked[session.nonce] = session.expires

    def csrf(self, session: Session) -> str:
        return self._mac("csrf", session.nonce)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    @staticmethod
    def login_nonce() -> str:
        return secrets.token_urlsafe(18)

    def login_token(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def check_login(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token or len(nonce) > 64:
            return False
        return hmac.compare_digest(str(token), self.login_token(nonce))
