"""The routes of the gateway's own MCP endpoint (``/mcp`` and ``/mcp/{name}``) and what the document says of them.

Both speak MCP's streamable HTTP (answers as JSON, sessions stateless): ``POST`` one JSON-RPC message, get its
JSON-RPC answer (``202`` and no body for a notification). Refusals before MCP is spoken (no key, a project the
server is not for, an unknown server) are the gateway's own errors; the SDK's transport answers what is not MCP
(``400``, ``406`` without ``Accept: application/json``, ``415``) with JSON-RPC errors.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict
from typing_extensions import TypedDict

from relaygate.errors import ErrorBody
from relaygate.routes import Route

__all__ = ["ROUTES", "SEPARATOR", "target_of"]

# Between a server's name and its tool's in the tool names of /mcp (calc__add): letters, digits, '_', '.' and
# '-' are what MCP and the model APIs allow in a tool name.
SEPARATOR = "__"


def target_of(path: str) -> str | None:
    """What a path below the mount point asks for: ``""`` for ``/mcp`` (every server the caller may use), a
    server's name for ``/mcp/{name}``, ``None`` for any other path."""
    if not path.startswith("/mcp"):
        return None
    rest = path[4:].strip("/") if path[4:5] in ("", "/") else None
    if rest is None or "/" in rest:
        return None
    return rest


class JsonRpcMessage(BaseModel):
    """A JSON-RPC 2.0 message of MCP: a request (with ``id``) or a notification (without)."""

    model_config = ConfigDict(extra="allow")

    jsonrpc: Literal["2.0"]
    # The request's id; a notification has none (and is answered 202, without a body).
    id: int | str | None = None
    # initialize, tools/list, tools/call, ping, notifications/initialized, ...
    method: str
    params: dict[str, Any] | None = None


class JsonRpcErrorData(TypedDict):
    code: int
    message: str
    data: NotRequired[Any]


class JsonRpcAnswer(TypedDict):
    """The JSON-RPC answer to a request: its ``result``, or an ``error``."""

    jsonrpc: Literal["2.0"]
    id: int | str | None
    result: NotRequired[dict[str, Any]]
    error: NotRequired[JsonRpcErrorData]


# The gateway's refusals, or the MCP transport's JSON-RPC errors.
McpErrorBody = ErrorBody | JsonRpcAnswer

_ACCEPTED = {"202": {"description": "A notification (a message without `id`) was taken; there is no body."}}
_EXAMPLES = {
    "initialize": {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "example", "version": "1.0"},
        },
    },
    "list_tools": {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    "call_tool": {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {}}},
}
_COMMON: dict[str, Any] = {
    "tag": "MCP",
    "body": JsonRpcMessage,
    "answer": JsonRpcAnswer,
    "error_body": McpErrorBody,
    "responses": _ACCEPTED,
    "examples": _EXAMPLES,
    "scoped": False,
}

ROUTES = [
    Route(
        "POST",
        "/mcp",
        "mcpAllServers",
        "MCP: the tools of every MCP server the project may use",
        description="An MCP endpoint (streamable HTTP, JSON answers, no session) whose tools are those of every "
        "configured MCP server the caller's project may use, named `{server}__{tool}`. Tool calls pass the "
        "project's `tool_calls_per_minute`, are traced as `execute_tool` spans and recorded in the ledger. A "
        "gateway with no MCP server configured answers 404 (`mcp_server_not_found`).",
        errors=(404, 406, 415, 503),
        **_COMMON,
    ),
    Route(
        "POST",
        "/mcp/{name}",
        "mcpServer",
        "MCP: the tools of one configured MCP server",
        description="An MCP endpoint (streamable HTTP, JSON answers, no session) serving the tools of the "
        "configured MCP server `name` (those its `tools:` names), to a project its `projects:` allows (else "
        "403; an unknown name is a 404). Tool calls pass the project's `tool_calls_per_minute`, are traced as "
        "`execute_tool` spans and recorded in the ledger.",
        errors=(404, 406, 415, 503),
        **_COMMON,
    ),
]
