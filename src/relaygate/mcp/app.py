"""``/mcp`` and ``/mcp/{name}``: the gateway as an MCP server for MCP clients (:class:`McpApp`)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate._asgi import header, route_path
from relaygate.context import get_context
from relaygate.errors import (
    GatewayError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServiceUnavailableError,
    send_error,
)
from relaygate.mcp.routes import ROUTES, target_of

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from relaygate.ledger import Ledger
    from relaygate.limits.limiter import Limiter
    from relaygate.mcp.pool import McpPool
    from relaygate.mcp.server import ToolServer
    from relaygate.telemetry import Telemetry

__all__ = ["McpApp"]


class McpApp:
    """Serves the configured MCP servers' tools to MCP clients (Claude Desktop, Cursor, the ``mcp`` SDK), over
    streamable HTTP; passes every other path on.

    ``/mcp/{name}`` serves the tools of server ``name`` to the projects its ``projects:`` allows (another
    project's key gets a 403, an unknown name a 404); ``/mcp`` serves those of every server the caller's project
    may use, named ``{server}__{tool}``. The SDK's transport speaks MCP (JSON answers, stateless: any request may
    come without ``initialize`` first); :class:`~relaygate.mcp.server.ToolServer` answers ``tools/list`` and
    ``tools/call`` from the :class:`~relaygate.mcp.McpPool`.

    Sits right inside :class:`~relaygate.middleware.auth.AuthMiddleware`, so the key and project are checked
    (a request without a key gets auth's 401 with ``WWW-Authenticate``) and the request's span is open around it.
    The transport's task group runs between :meth:`start` and :meth:`aclose` (the gateway's lifespan); before
    that, these paths answer 503. A gateway with no MCP server configured answers them 404
    (``mcp_server_not_found``), and never imports the MCP SDK for them.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        pool: McpPool,
        limiter: Limiter | None = None,
        ledger: Ledger | None = None,
        telemetry: Telemetry | None = None,
        max_body_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.pool = pool
        self.limiter, self.ledger, self.telemetry = limiter, ledger, telemetry
        # The MCP server the transport serves, made at start-up, and only with servers to serve (the SDK is
        # imported then: most gateways have none, and it takes tens of MiB).
        self.tools: ToolServer | None = None
        self.max_body_bytes = max_body_bytes
        # What the OpenAPI document shows (relaygate.routes.stack_routes collects it).
        self.routes = ROUTES
        self._manager: StreamableHTTPSessionManager | None = None
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        if self._stack is not None or not self.pool.servers:
            return
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        from relaygate.mcp.server import ToolServer

        if self.tools is None:
            self.tools = ToolServer(self.pool, limiter=self.limiter, ledger=self.ledger, telemetry=self.telemetry)
        # A session manager runs once: a gateway started again gets a new one.
        manager = StreamableHTTPSessionManager(
            self.tools.server, json_response=True, stateless=True, max_request_body_size=self.max_body_bytes
        )
        stack = AsyncExitStack()
        await stack.enter_async_context(manager.run())
        self._manager, self._stack = manager, stack

    async def aclose(self) -> None:
        stack, self._stack, self._manager = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = target_of(route_path(scope))
        if target is None:
            await self.app(scope, receive, send)
            return
        try:
            manager = self._admit(scope, target)
        except GatewayError as error:
            get_context(scope).error = error.code or error.type
            await send_error(send, error)
            return
        await manager.handle_request(scope, receive, send)

    def _admit(self, scope: Scope, target: str) -> StreamableHTTPSessionManager:
        if not self.pool.servers:
            raise NotFoundError(
                "No MCP server is configured: /mcp serves the tools of the servers under mcp_servers in the "
                "gateway's config.",
                code="mcp_server_not_found",
            )
        if scope["method"] != "POST":
            # Stateless: no stream of the server's own messages (GET) and no session to end (DELETE); MCP's
            # streamable HTTP lets a server answer both with a 405.
            raise MethodNotAllowedError(
                f"Method {scope['method']} is not allowed for {scope['path']}; MCP clients POST their messages "
                "here (the gateway keeps no MCP sessions).",
                headers=[(b"allow", b"POST")],
            )
        content_type = (header(scope, b"content-type") or "").partition(";")[0].strip().lower()
        if content_type != "application/json":
            # The transport refuses it too, with a 400 in plain text; MCP's messages are JSON.
            raise GatewayError(
                f"MCP messages are JSON: send them with Content-Type: application/json (not {content_type!r}).",
                status=415,
                type="invalid_request_error",
                code="unsupported_media_type",
            )
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            # The transport would refuse it too, in plain text; this says it as the gateway's errors do.
            raise PayloadTooLargeError(f"Request body is {length} bytes; the limit is {self.max_body_bytes} bytes.")
        project_id = get_context(scope).project_id
        if target and target not in self.pool.servers:
            raise NotFoundError(f"No MCP server named '{target}' is configured.", code="mcp_server_not_found")
        if target and not self.pool.may_use(target, project_id):
            raise PermissionDeniedError(f"Project '{project_id}' may not use MCP server '{target}'.")
        if self._manager is None:
            raise ServiceUnavailableError(
                "The MCP endpoint is not started: the gateway's lifespan has not run (a mounted gateway needs the "
                "host to run gateway.lifespan).",
                headers=[(b"retry-after", b"1")],
            )
        return self._manager
