"""The pool of MCP sessions: one per server, opened at start-up or on first use, reopened when it drops.

:class:`McpPool` is the one way the gateway reaches MCP servers (the tool loop, and ``/mcp`` serving them
to MCP clients):

- :meth:`McpPool.list_tools` gives a server's tools (only those its ``tools:`` names), listed once and kept
  until the server says its list changed (``notifications/tools/list_changed``) or ``mcp.tools_ttl`` passes;
- :meth:`McpPool.call_tool` calls one, bounded by ``mcp.tool_timeout`` (or the timeout given), and returns
  the server's :class:`~mcp.types.CallToolResult` as it came (a tool that failed is a result with
  ``isError``); what keeps a call from a result raises a :class:`~relaygate.mcp.errors.McpFailure`.

Servers are named as configured (``mcp_servers.<name>``); a request's own ``server_url`` is registered with
:meth:`McpPool.adhoc`, which gives the name to use for it. A session found dropped (the server restarted and
forgot it, or the connection closed) is reopened, and a call that could not reach the server through it is
made once more on the new one. A server that cannot be reached at start-up is a warning: the pool tries again
when it is next used.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from relaygate.mcp.connection import Connection, Endpoint, describe
from relaygate.mcp.errors import McpFailure, ServerUnavailable, ToolTimeout, UnknownServer, UnknownTool
from relaygate.settings.mcp import McpServerSettings, McpSettings, McpTransport

if TYPE_CHECKING:
    # The SDK is imported when a session is first opened, not with relaygate (it takes a while to import).
    from mcp import ClientSession, types

__all__ = ["ADHOC_PREFIX", "McpPool"]

logger = logging.getLogger("relaygate.mcp")

# The names of requests' own servers start with this; configured names cannot (see McpPool.adhoc).
ADHOC_PREFIX = "url:"
# Requests' own servers kept open at once; the least recently used is closed past that.
MAX_ADHOC = 32
# Errors that say the session is gone rather than that the server answered: the call did not get through.
DROPPED = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream)
# JSON-RPC codes: the SDK's for a closed connection, and those of a session the server no longer knows (the
# SDK's streamable-HTTP client says 32600 for a 404).
CONNECTION_CLOSED = -32000
SESSION_CODES = frozenset({32600, -32600})


class McpPool:
    """Sessions with the configured MCP servers (see the module docstring); owned by the gateway's lifespan."""

    def __init__(
        self,
        servers: Mapping[str, McpServerSettings],
        *,
        options: McpSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = dict(servers)
        self.options = options if options is not None else McpSettings()
        self.clock = clock
        self._connections: dict[str, Connection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._adhoc: OrderedDict[str, Endpoint] = OrderedDict()
        # Each server's last tool list, kept when its session drops (see list_tools' stale_ok).
        self._known: dict[str, list[types.Tool]] = {}

    # --- who may use what -----------------------------------------------------------------------------

    def __contains__(self, server: object) -> bool:
        return server in self.servers or server in self._adhoc

    def may_use(self, server: str, project_id: str | None) -> bool:
        """Whether ``project_id`` may use the configured server (its ``projects:``; every project by default)."""
        settings = self.servers.get(server)
        if settings is None:
            return False
        return settings.projects is None or (project_id is not None and project_id in settings.projects)

    def servers_for(self, project_id: str | None) -> list[str]:
        """The configured servers ``project_id`` may use, in the config's order."""
        return [name for name in self.servers if self.may_use(name, project_id)]

    def adhoc(self, url: str, transport: McpTransport = "http", headers: Mapping[str, str] | None = None) -> str:
        """Register a server a request names by its own URL (checked against ``mcp.allowed_hosts`` by the
        caller); the name to list and call its tools with."""
        name = f"{ADHOC_PREFIX}{transport}:{url}"
        self._adhoc[name] = Endpoint(url, transport, dict(headers or {}))
        self._adhoc.move_to_end(name)
        while len(self._adhoc) > MAX_ADHOC:
            oldest, _ = self._adhoc.popitem(last=False)
            connection = self._connections.pop(oldest, None)
            if connection is not None:
                asyncio.ensure_future(connection.close())
        return name

    # --- lifespan ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open a session with every configured server and list its tools; a server that cannot be reached is
        a warning, tried again when next used."""

        async def warm(name: str) -> None:
            try:
                tools = await self.list_tools(name)
            except McpFailure as failure:
                logger.warning("%s; it is tried again when a request uses it", failure.message)
                return
            logger.info("MCP server %r: %d tools", name, len(tools))

        async with anyio.create_task_group() as group:
            for name in self.servers:
                group.start_soon(warm, name)

    async def aclose(self) -> None:
        connections = list(self._connections.values())
        self._connections.clear()
        async with anyio.create_task_group() as group:
            for connection in connections:
                group.start_soon(connection.close)

    # --- tools ---------------------------------------------------------------------------------------

    async def list_tools(self, server: str, *, stale_ok: bool = False) -> list[types.Tool]:
        """The server's tools (those its ``tools:`` names), from the cache when it is fresh. With ``stale_ok``, a
        server that cannot be reached gives the tools it last listed, if it ever did (the tool loop offers
        them: a call then tells the model the server is down)."""
        try:
            tools = await self._list_tools(server)
        except ServerUnavailable:
            known = self._known.get(server)
            if not stale_ok or known is None:
                raise
            return self._offered(server, known)
        return tools

    async def _list_tools(self, server: str) -> list[types.Tool]:
        from mcp.shared.exceptions import McpError

        for attempt in (1, 2):
            connection = await self._connection(server)
            if connection.tools_fresh(self.options.tools_ttl):
                return self._offered(server, connection.tools or [])
            try:
                with anyio.fail_after(self.options.connect_timeout):
                    tools = await _list_all(connection)
            except TimeoutError:
                raise ServerUnavailable(
                    f"MCP server '{server}' did not list its tools within {self.options.connect_timeout:g} s",
                    server=server,
                ) from None
            except (McpError, *DROPPED) as exc:
                if attempt == 1 and _dropped(exc):
                    await self._drop(server, connection)
                    continue
                raise _failure(server, "listing its tools", exc) from None
            connection.tools, connection.tools_at = tools, time.monotonic()
            self._known[server] = tools
            return self._offered(server, tools)
        raise AssertionError("unreachable")  # pragma: no cover

    async def call_tool(
        self, server: str, name: str, arguments: dict[str, Any] | None = None, timeout: float | None = None
    ) -> types.CallToolResult:
        """Call a tool; the server's result as it came (``isError`` when the tool failed). Raises
        :class:`~relaygate.mcp.errors.McpFailure` when no result comes: unknown server or tool, the server
        unreachable, or no answer within ``timeout`` (default ``mcp.tool_timeout``)."""
        from mcp.shared.exceptions import McpError

        settings = self.servers.get(server)
        if settings is not None and settings.tools is not None and name not in settings.tools:
            raise UnknownTool(f"MCP server '{server}' offers no tool '{name}'", server=server)
        limit = timeout if timeout is not None else self.options.tool_timeout
        for attempt in (1, 2):
            connection = await self._connection(server)
            try:
                with anyio.fail_after(limit):
                    return await connection.request(lambda session: session.call_tool(name, arguments or {}))
            except TimeoutError:
                raise ToolTimeout(
                    f"the tool '{name}' of MCP server '{server}' did not answer within {limit:g} s (mcp.tool_timeout)",
                    server=server,
                ) from None
            except (McpError, *DROPPED) as exc:
                if attempt == 1 and _dropped(exc):
                    await self._drop(server, connection)
                    continue
                raise _failure(server, f"calling '{name}'", exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _offered(self, server: str, tools: list[types.Tool]) -> list[types.Tool]:
        settings = self.servers.get(server)
        if settings is None or settings.tools is None:
            return list(tools)
        return [tool for tool in tools if tool.name in settings.tools]

    # --- sessions ------------------------------------------------------------------------------------

    async def _connection(self, server: str) -> Connection:
        connection = self._connections.get(server)
        if connection is not None and connection.alive:
            return connection
        lock = self._locks.setdefault(server, asyncio.Lock())
        async with lock:
            connection = self._connections.get(server)
            if connection is not None and connection.alive:
                return connection
            if connection is not None:
                await connection.close()
            connection = Connection(server, self._endpoint(server), connect_timeout=self.options.connect_timeout)
            try:
                await connection.open()
            except Exception as exc:
                self._connections.pop(server, None)
                raise ServerUnavailable(
                    f"MCP server '{_shown(server)}' cannot be reached: {describe(exc)}", server=server
                ) from None
            self._connections[server] = connection
            return connection

    async def _drop(self, server: str, connection: Connection) -> None:
        if self._connections.get(server) is connection:
            del self._connections[server]
        await connection.close()

    def _endpoint(self, server: str) -> Endpoint:
        settings = self.servers.get(server)
        if settings is not None:
            return Endpoint(settings.url, settings.transport, settings.header_values())
        endpoint = self._adhoc.get(server)
        if endpoint is None:
            raise UnknownServer(f"no MCP server named '{server}' is configured", server=server)
        return endpoint


async def _list_all(connection: Connection) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        page = await connection.request(functools.partial(_list_page, cursor=cursor))
        tools += page.tools
        cursor = page.nextCursor
        if not cursor:
            return tools


async def _list_page(session: ClientSession, *, cursor: str | None) -> types.ListToolsResult:
    from mcp.types import PaginatedRequestParams

    return await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)


def _dropped(exc: BaseException) -> bool:
    from mcp.shared.exceptions import McpError

    if isinstance(exc, McpError):
        code = exc.error.code
        return code == CONNECTION_CLOSED or (code in SESSION_CODES and "session" in exc.error.message.lower())
    return isinstance(exc, DROPPED)


def _failure(server: str, doing: str, exc: BaseException) -> McpFailure:
    from mcp.shared.exceptions import McpError

    shown = _shown(server)
    if isinstance(exc, McpError) and not _dropped(exc):
        return McpFailure(f"MCP server '{shown}' answered an error while {doing}: {exc.error.message}", server=server)
    return ServerUnavailable(f"MCP server '{shown}' dropped the session while {doing}: {describe(exc)}", server=server)


def _shown(server: str) -> str:
    """A server's name as messages show it: a request's own server by its URL."""
    return server.removeprefix(ADHOC_PREFIX).partition(":")[2] if server.startswith(ADHOC_PREFIX) else server
