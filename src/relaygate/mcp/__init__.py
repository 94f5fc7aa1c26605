"""MCP: sessions with the configured MCP servers (:class:`McpPool`), their tools in requests' tool loops, and
the errors of calling them.

See ``docs/guides/mcp.md``.
"""

from relaygate.mcp.errors import McpFailure, ServerUnavailable, ToolTimeout, UnknownServer, UnknownTool
from relaygate.mcp.pool import ADHOC_PREFIX, McpPool

__all__ = [
    "ADHOC_PREFIX",
    "McpFailure",
    "McpPool",
    "ServerUnavailable",
    "ToolTimeout",
    "UnknownServer",
    "UnknownTool",
]
