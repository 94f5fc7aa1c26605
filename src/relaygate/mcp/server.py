"""The gateway's own MCP server: the configured servers' tools, offered to MCP clients through :class:`McpApp`.

:class:`ToolServer` holds a low-level :class:`mcp.server.lowlevel.Server` (the SDK speaks MCP) whose handlers are
backed by the :class:`~relaygate.mcp.McpPool`. Which tools a request sees depends on its path and project: at
``/mcp/{name}`` the server's (those its ``tools:`` names), at ``/mcp`` those of every server the project may use,
named ``{server}__{tool}``. Each tool call is counted on the project's ``tool_calls_per_minute``, traced as an
``execute_tool`` span under the request's span and recorded in the ledger with its duration and error.

Refusals and failures of a call (a limit reached, an unknown tool, a server down or too slow) are results marked
as errors, with the reason in their text and in ``_meta["relaygate/error"]`` (``type``, and ``retry_after`` for a
limit): that is how the SDK answers a tool call that failed, and what a client shows its model.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import McpError

from relaygate._asgi import route_path
from relaygate.context import RequestContext, get_context
from relaygate.errors import GatewayError
from relaygate.ledger.tools import ToolCallOutcome, tool_call_record
from relaygate.mcp.errors import McpFailure, ServerUnavailable, ToolTimeout, UnknownServer, UnknownTool
from relaygate.mcp.routes import SEPARATOR, target_of
from relaygate.telemetry import Telemetry

if TYPE_CHECKING:
    from relaygate.ledger import Ledger
    from relaygate.limits.limiter import Limiter
    from relaygate.mcp.pool import McpPool

__all__ = ["ERROR_META", "ToolServer"]

logger = logging.getLogger("relaygate.mcp")

# Where an error result says what kept the call from the tool, for programs rather than models.
ERROR_META = "relaygate/error"
INSTRUCTIONS = "Tools of MCP servers configured in relaygate, called through the gateway."


class ToolServer:
    """The handlers of the gateway's MCP server (see the module docstring); ``server`` is what the SDK serves."""

    def __init__(
        self,
        pool: McpPool,
        *,
        limiter: Limiter | None = None,
        ledger: Ledger | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        from relaygate import __version__

        self.pool = pool
        self.limiter = limiter
        self.ledger = ledger
        self.telemetry = telemetry
        self.server: Server[Any, Any] = Server("relaygate", __version__, instructions=INSTRUCTIONS)
        self.server.list_tools()(self.list_tools)  # type: ignore[no-untyped-call]
        # tools/call is answered by its handler in the SDK's table rather than through Server.call_tool(): that
        # decorator lists the tools before a call whose tool it has not seen (to check the arguments against its
        # schema), which here would list remote servers on the call's path, and a server that cannot be listed
        # would fail the call before it is counted, traced or recorded. The servers behind check the arguments.
        self.server.request_handlers[types.CallToolRequest] = self._handle_call

    def _caller(self) -> tuple[RequestContext, str]:
        """The request's context and what it asks for: a server's name, or "" for every server it may use."""
        scope = self.server.request_context.request.scope  # type: ignore[union-attr]
        return get_context(scope), target_of(route_path(scope)) or ""

    # --- tools/list -------------------------------------------------------------------------------------

    async def list_tools(self) -> list[types.Tool]:
        ctx, target = self._caller()
        if target:
            try:
                return await self.pool.list_tools(target)
            except McpFailure as failure:
                raise McpError(types.ErrorData(code=types.INTERNAL_ERROR, message=failure.message)) from None
        servers = self.pool.servers_for(ctx.project_id)
        listed: dict[str, list[types.Tool]] = {}

        async def one(server: str) -> None:
            try:
                listed[server] = await self.pool.list_tools(server)
            except McpFailure as failure:  # the others' tools are still offered
                logger.warning("%s; /mcp lists the other servers' tools", failure.message)

        async with anyio.create_task_group() as group:
            for server in servers:
                group.start_soon(one, server)
        return [
            tool.model_copy(update={"name": f"{server}{SEPARATOR}{tool.name}"})
            for server in servers
            for tool in listed.get(server, ())
        ]

    # --- tools/call -------------------------------------------------------------------------------------

    async def _handle_call(self, request: types.CallToolRequest) -> types.ServerResult:
        return types.ServerResult(await self.call_tool(request.params.name, request.params.arguments or {}))

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        ctx, target = self._caller()
        server, tool = (target, name) if target else self._split(name, ctx.project_id)
        request_id = str(self.server.request_context.request_id)
        telemetry = self.telemetry
        span = telemetry.tool_span(ctx, server, tool, request_id) if telemetry is not None else None
        started, started_wall = time.perf_counter(), time.time()
        error: str | None = "client_disconnected"
        message: str | None = "the client left before the call ended"
        status = 499
        try:
            if not server:
                raise UnknownTool(f"no tool named '{name}': name tools as {{server}}{SEPARATOR}{{tool}}", server="")
            if self.limiter is not None:
                await self.limiter.admit_tool_call(ctx)
            result = await self.pool.call_tool(server, tool, arguments)
            status, error, message = 200, None, None
            if result.isError:
                error, message = "tool_error", _text(result) or "the tool answered an error"
            return result
        except GatewayError as refused:  # a limit, or the limits' counters out of reach
            status, error, message = refused.status, refused.code or refused.type, refused.message
            return _error_result(message, error, _retry_after(refused))
        except McpFailure as failure:
            status, error, message = _failure_status(failure), _failure_code(failure), failure.message
            return _error_result(message, error)
        finally:
            duration = time.perf_counter() - started
            if span is not None:
                Telemetry.end_tool_span(span, error)
            self._record(ctx, ToolCallOutcome(server, tool, name, started_wall, duration, status, error, message))

    def _split(self, name: str, project_id: str | None) -> tuple[str, str]:
        """The server and tool of a name at ``/mcp`` (``calc__add``); the longest server name that fits wins."""
        for server in sorted(self.pool.servers_for(project_id), key=len, reverse=True):
            if name.startswith(server + SEPARATOR) and len(name) > len(server) + len(SEPARATOR):
                return server, name[len(server) + len(SEPARATOR) :]
        return "", name

    def _record(self, ctx: RequestContext, outcome: ToolCallOutcome) -> None:
        ledger = self.ledger
        if ledger is None or not ledger.running:
            return
        try:
            ledger.writer.submit(tool_call_record(ctx, outcome))
        except ValueError:
            logger.exception("ledger: the tool call could not be recorded")


def _error_result(message: str, error_type: str, retry_after: int | None = None) -> types.CallToolResult:
    meta: dict[str, Any] = {"type": error_type}
    if retry_after is not None:
        meta["retry_after"] = retry_after
    return types.CallToolResult.model_validate(
        {"content": [{"type": "text", "text": message}], "isError": True, "_meta": {ERROR_META: meta}}
    )


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _retry_after(error: GatewayError) -> int | None:
    for name, value in error.headers:
        if name == b"retry-after":
            return int(value)
    return None


def _failure_status(failure: McpFailure) -> int:
    if isinstance(failure, UnknownTool | UnknownServer):
        return 404
    if isinstance(failure, ToolTimeout):
        return 504
    return 502


def _failure_code(failure: McpFailure) -> str:
    if isinstance(failure, UnknownTool | UnknownServer):
        return "unknown_tool"
    if isinstance(failure, ToolTimeout):
        return "tool_timeout"
    if isinstance(failure, ServerUnavailable):
        return "mcp_server_unavailable"
    return "mcp_error"
