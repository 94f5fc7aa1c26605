"""What can go wrong between the gateway and an MCP server, as exceptions of one family.

None of these reaches a client as a 500: the tool loop turns them into tool results marked as errors
(the model reads what happened), and ``/mcp`` into MCP errors.
"""

from __future__ import annotations

__all__ = ["McpFailure", "ServerUnavailable", "ToolTimeout", "UnknownServer", "UnknownTool"]


class McpFailure(Exception):
    """A tool could not be listed or called; ``message`` says why in words a model or a person can act on."""

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.message = message
        self.server = server


class UnknownServer(McpFailure):
    """No MCP server of that name is configured."""


class ServerUnavailable(McpFailure):
    """The server cannot be reached, or its session could not be opened or dropped mid-call."""


class ToolTimeout(McpFailure):
    """A tool call took longer than its timeout (``mcp.tool_timeout``)."""


class UnknownTool(McpFailure):
    """The server does not offer that tool (or the config's ``tools:`` leaves it out)."""
