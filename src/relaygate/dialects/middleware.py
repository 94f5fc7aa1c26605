"""The dialects in the stack: :class:`DialectMiddleware` at the edge, :class:`DialectRoutes` inside auth."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate._asgi import route_path
from relaygate.context import get_context
from relaygate.dialects.base import Dialect, DialectRoute
from relaygate.dialects.egress import Egress
from relaygate.errors import (
    ClientDisconnected,
    GatewayError,
    MethodNotAllowedError,
    ServerError,
    admin_path,
    send_error,
)
from relaygate.routes import Route

__all__ = ["DialectMiddleware", "DialectRoutes"]

logger = logging.getLogger("relaygate.dialects")

_SCOPED = re.compile(r"^/[^/]+(/v1/.*)$", re.DOTALL)


class DialectMiddleware:
    """Serves the registered dialects' routes on the one canonical stack.

    Sits inside :class:`~relaygate.middleware.projects.ProjectScopeMiddleware` (it sees ``/v1/...`` paths)
    and outside :class:`~relaygate.middleware.auth.AuthMiddleware`, so that everything the request gets back
    leaves in the caller's dialect, auth's 401 and 403 included. For a request on one of a dialect's routes
    it puts the dialect's :class:`~relaygate.dialects.base.Exchange` on the context (``ctx.dialect``), lets
    the dialect adapt the request for auth (:meth:`~relaygate.dialects.base.Dialect.prepare`), and wraps
    ``send`` in an :class:`~relaygate.dialects.egress.Egress` that translates answers, streams and errors.

    A model call's path becomes its canonical endpoint's (``/v1/chat/completions``): the ledger, limits,
    guards and proxy inside take it for that call, and ``read_json_body`` asks the exchange for the
    canonical body when the first of them reads it, after auth. Routes the dialect answers itself are
    served by :class:`DialectRoutes`, right inside auth. Other requests pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, dialects: Sequence[Dialect]) -> None:
        self.app = app
        self.matchers = [
            (re.compile(f"^{route.path}/?$"), route, dialect) for dialect in dialects for route in dialect.routes
        ]
        # A route taken only with a header (DialectRoute.header) answers a path another route documents.
        undocumented = [
            f"{d.name}: {r.method} {r.path}" for d in dialects for r in d.routes if r.doc is None and r.header is None
        ]
        if undocumented:
            raise ValueError(f"dialect routes without doc= (a relaygate.routes.Route): {', '.join(undocumented)}")
        # What the OpenAPI document shows (relaygate.routes.stack_routes collects it).
        self.routes: list[Route] = [r.doc for d in dialects for r in d.routes if r.doc is not None]
        # A cheap first test: most requests are chat calls on no dialect's route.
        self.prefixes = tuple({_literal_head(route.path) for _, route, _ in self.matchers})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.matchers:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        method = scope["method"]
        found, allowed = self._match(scope, path)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, dialect, params = found
        ctx = get_context(scope)
        exchange = dialect.exchange(ctx, route, params)
        ctx.dialect = exchange
        if route.method != method:
            methods = ", ".join(dict.fromkeys(allowed))
            exchange.refused = MethodNotAllowedError(
                f"Method {method} is not allowed for {scope['path']}; use {methods}.",
                headers=[(b"allow", methods.encode())],
            )
        scope = dialect.prepare(scope)
        if exchange.calls and exchange.refused is None and route.canonical is not None:
            scope = _moved(scope, path, route.canonical)
        await self.app(scope, receive, Egress(exchange, send))

    def _match(self, scope: Scope, path: str) -> tuple[tuple[DialectRoute, Dialect, dict[str, str]] | None, list[str]]:
        """The dialect route of ``path`` (one of another method when none has the request's), and the methods
        the path has."""
        if not self.matchers or not path.startswith(self.prefixes):
            return None, []
        method = scope["method"]
        found: tuple[DialectRoute, Dialect, dict[str, str]] | None = None
        allowed: list[str] = []
        for pattern, route, dialect in self.matchers:
            match = pattern.match(path)
            if match is None or (route.header is not None and not _has_header(scope, route.header)):
                continue
            if route.method == method:
                return (route, dialect, match.groupdict()), allowed
            if found is None and not allowed:
                found = (route, dialect, match.groupdict())
            allowed.append(route.method)
        return found, allowed

    async def refuse(
        self, scope: Scope, send: Send, error: GatewayError, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        """Send ``error``, a refusal by a layer outside this one (a malformed tracing header, a project named
        twice), in the shape of the dialect whose route the path is; in the gateway's own otherwise. The
        path may still hold its ``/{project_id}`` prefix. Give it to those layers as their ``refuse``."""
        path = route_path(scope)
        scoped = _SCOPED.match(path)
        if scoped is not None:
            path = scoped.group(1)  # below a /{project_id} prefix, valid or not
        found, _ = self._match(scope, path)
        if found is None:
            await send_error(send, error, headers, admin=admin_path(path))
            return
        route, dialect, params = found
        exchange = dialect.exchange(get_context(scope), route, params)
        status, body = exchange.error(error.status, dict(error.body()["error"]))
        start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        start_headers += [*error.headers, *headers, *exchange.response_headers()]
        await send({"type": "http.response.start", "status": status, "headers": start_headers})
        await send({"type": "http.response.body", "body": body})


class DialectRoutes:
    """Right inside auth: answers the routes a dialect serves itself (``ctx.dialect`` set by
    :class:`DialectMiddleware`, without a canonical endpoint), once the caller's key and project are known.
    Everything else passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = get_context(scope).dialect if scope["type"] == "http" else None
        if exchange is None or (exchange.calls and exchange.refused is None):
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            if exchange.refused is not None:
                raise exchange.refused
            await exchange.serve(scope, receive, send_tracked)
        except GatewayError as error:
            if not started:
                await send_error(send, error)
        except (ClientDisconnected, OSError):
            return
        except Exception:
            logger.exception("dialect %s: %s %s failed", exchange.dialect.name, scope["method"], scope["path"])
            if not started:
                await send_error(send, ServerError("The gateway could not answer this request.", status=503))


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope["headers"])


def _literal_head(pattern: str) -> str:
    """The literal start of a route's pattern (``/v1/responses`` of ``/v1/responses/(?P<id>...)``)."""
    head = re.match(r"[A-Za-z0-9_/\-]*", pattern)
    return head.group(0) if head else ""


def _moved(scope: Scope, path: str, to: str) -> Scope:
    """``scope`` with its route path ``path`` replaced by ``to``, below the same mount point."""
    mount_prefix = scope["path"][: len(scope["path"]) - len(path)]
    new_path = mount_prefix + to
    return {**scope, "path": new_path, "raw_path": quote(new_path).encode()}
