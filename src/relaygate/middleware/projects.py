"""Project scope: ``/{project_id}/v1/...`` or ``X-Project-Id``."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate._asgi import header, route_path
from relaygate.context import get_context
from relaygate.errors import InvalidRequestError, NotFoundError, Refuse, send_refusal

__all__ = ["ProjectScopeMiddleware"]

_PROJECT_PATH = re.compile(r"^/([A-Za-z0-9][A-Za-z0-9_.\-]{0,127})(/v1(?:/.*)?)$")
# Any first segment before /v1: a project id, or something no route has.
_ANY_PROJECT_PATH = re.compile(r"^/([^/]+)(/v1(?:/.*)?)$", re.DOTALL)


class ProjectScopeMiddleware:
    """Sets ``ctx.project_id`` from the path prefix or the ``X-Project-Id`` header.

    ``/{project_id}/v1/chat/completions`` is rewritten to ``/v1/chat/completions`` (below any mount
    point) so that the layers inside see one set of paths. When both the path and the header name a
    project and they differ, the request is refused with a 400. When neither does, the project stays
    unset here; :class:`~relaygate.middleware.auth.AuthMiddleware` fills it in when the key belongs to
    exactly one project.
    """

    def __init__(self, app: ASGIApp, *, refuse: Refuse = send_refusal) -> None:
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = get_context(scope)
        from_header = header(scope, b"x-project-id")
        path = route_path(scope)
        match = _PROJECT_PATH.match(path)
        if (match is None or match.group(1) == "v1") and _ANY_PROJECT_PATH.match(path) is not None:
            # /v1/v1/... or /<not a project id>/v1/...: no route is there. Refused here rather than by the proxy,
            # so that a dialect's route answers in its shape (see DialectMiddleware.refuse).
            missing = NotFoundError(f"Invalid URL ({scope['method']} {scope['path']}).", code="unknown_url")
            await self.refuse(scope, send, missing, [])
            return
        from_path = match.group(1) if match else None
        if from_path is not None and from_header is not None and from_path != from_header:
            # Refused once the caller is authenticated (for the path's project), not before.
            ctx.refusal = ctx.refusal or InvalidRequestError(
                f"The project in the path ('{from_path}') and in X-Project-Id ('{from_header}') differ.",
                param="X-Project-Id",
                code="project_mismatch",
            )
        ctx.project_id = from_path or from_header or None
        if from_path is not None and match is not None:
            mount_prefix = scope["path"][: len(scope["path"]) - len(path)]
            new_path = mount_prefix + match.group(2)
            scope = {**scope, "path": new_path, "raw_path": quote(new_path).encode()}
        await self.app(scope, receive, send)
