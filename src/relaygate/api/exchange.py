"""One request to the management API: what a route handler reads of it and how it answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from relaygate._asgi import read_json_body, send_json
from relaygate.context import RequestContext
from relaygate.errors import InvalidRequestError, PermissionDeniedError

__all__ = ["ApiRequest", "int_param"]


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses; the length keeps int() cheap.
    if not (value.isascii() and value.isdigit() and len(value) <= 12 and low <= int(value) <= high):
        message = f"'{name}' must be an integer from {low} to {high}."
        raise InvalidRequestError(message, param=name, code="invalid_value")
    return int(value)


@dataclasses.dataclass(slots=True)
class ApiRequest:
    """One management request: what a route handler reads and how it answers."""

    scope: Scope
    receive: Receive
    send: Send
    ctx: RequestContext
    params: dict[str, str]
    max_body_bytes: int

    @property
    def project(self) -> str:
        """The caller's project, which every query is scoped by."""
        if self.ctx.project_id is None:
            raise InvalidRequestError(
                "Name a project with X-Project-Id.", param="X-Project-Id", code="project_required"
            )
        return self.ctx.project_id

    def admin(self) -> None:
        if not self.ctx.is_admin:
            raise PermissionDeniedError("This route needs the admin key (X-Admin-Key).")

    async def body(self, *, optional: bool = False) -> dict[str, Any]:
        """The JSON body; with ``optional``, a request without one reads as ``{}``."""
        if optional and not _has_body(self.scope):
            return {}
        return await read_json_body(self.scope, self.receive, self.max_body_bytes)

    async def json(self, body: Mapping[str, Any]) -> None:
        await send_json(self.send, 200, orjson.dumps(body))
