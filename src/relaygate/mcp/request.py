"""A request's ``mcp_servers``: checked, resolved to the pool's servers, and their tools offered to the model.

An entry names a configured server (``{"name": "calc"}``, any ``type``: the seeds' ``in-memory`` means a
configured one; ``slug`` stands for ``name``), or a server of its own by ``server_url`` (``type`` ``sse`` or
``ws`` says its transport; streamable HTTP otherwise), which only a host in ``mcp.allowed_hosts`` may serve.
Malformed entries are 400s naming the field; a server the project may not use, or a ``server_url`` on a host
not allowed, a 403. A name that is not configured is left out, with a warning in the log: the seeds' own
example names LangDB's built-in ``websearch``, and a gateway without one answers it without its tools.

The servers' tools join the request's own under names of their own (``calc__add``), which the caller's tool
names cannot take: a name already used gets a suffix (``calc__add_2``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from relaygate.errors import InvalidRequestError, PermissionDeniedError
from relaygate.mcp.pool import ADHOC_PREFIX, McpPool
from relaygate.settings.mcp import McpSettings, McpTransport

if TYPE_CHECKING:
    from mcp import types

__all__ = ["PARAM", "ToolCatalog", "requested_servers", "tool_catalog"]

logger = logging.getLogger("relaygate.mcp")

PARAM = "mcp_servers"
# OpenAI's rule for function names.
_NAME_LIMIT = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def requested_servers(value: Any, pool: McpPool, options: McpSettings, project_id: str | None) -> list[str]:
    """The pool's names of the servers a request's ``mcp_servers`` names, in order, each once."""
    if not isinstance(value, list):
        raise _invalid(PARAM, 'expected an array of MCP servers such as [{"name": "calc"}]')
    servers: list[str] = []
    for index, entry in enumerate(value):
        where = f"{PARAM}[{index}]"
        if not isinstance(entry, dict):
            raise _invalid(where, 'expected an object such as {"name": "calc"}')
        for key in ("name", "slug", "type", "server_url"):
            if entry.get(key) is not None and (not isinstance(entry[key], str) or not entry[key]):
                raise _invalid(f"{where}.{key}", "expected a non-empty string")
        url = entry.get("server_url")
        name = entry.get("name") or entry.get("slug")
        if url is not None:
            servers.append(_own_server(entry, url, where, pool, options))
        elif name is None:
            raise InvalidRequestError(
                f"Missing required parameter: '{where}.name'.", param=f"{where}.name", code="missing_required_parameter"
            )
        elif name not in pool.servers:
            # Not an error: LangDB's own example names its built-in "websearch" server, which a gateway that does
            # not configure one answers without (the request goes on without its tools).
            configured = ", ".join(pool.servers_for(project_id)) or "none"
            logger.warning(
                "%s.name: no MCP server '%s' is configured (configured: %s); the request goes on without it",
                where,
                name,
                configured,
            )
        elif not pool.may_use(name, project_id):
            raise PermissionDeniedError(
                f"The project may not use MCP server '{name}' ({where}.name).",
                param=f"{where}.name",
                code="mcp_server_not_allowed",
            )
        else:
            servers.append(name)
    return list(dict.fromkeys(servers))


def _own_server(entry: dict[str, Any], url: str, where: str, pool: McpPool, options: McpSettings) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme not in ("http", "https", "ws", "wss"):
        raise _invalid(f"{where}.server_url", "expected an http(s):// or ws(s):// URL with a host")
    if not options.allows(host):
        raise PermissionDeniedError(
            f"MCP server_url host '{host}' is not allowed ({where}.server_url): a request may name only a server "
            "on a host in mcp.allowed_hosts.",
            param=f"{where}.server_url",
            code="mcp_server_not_allowed",
        )
    kind = entry.get("type")
    transport: McpTransport = (
        "ws" if kind == "ws" or parts.scheme in ("ws", "wss") else "sse" if kind == "sse" else "http"
    )
    if (transport == "ws") != (parts.scheme in ("ws", "wss")):
        raise _invalid(f"{where}.server_url", f"a server of type '{kind}' needs a ws:// or wss:// URL")
    return pool.adhoc(url, transport)


@dataclass(slots=True)
class ToolCatalog:
    """The MCP tools offered to a request's model: their definitions (OpenAI ``tools`` entries) and, by the
    name the model calls, which server's tool each is."""

    definitions: list[dict[str, Any]] = field(default_factory=list)
    targets: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.targets)


def tool_catalog(tools: list[tuple[str, list[types.Tool]]], taken: set[str]) -> ToolCatalog:
    """The catalog of each server's tools (``(server, tools)`` in order), named apart from ``taken`` (the
    caller's own tool names)."""
    catalog = ToolCatalog()
    used = set(taken)
    for server, server_tools in tools:
        prefix = _UNSAFE.sub("_", _host(server) if server.startswith(ADHOC_PREFIX) else server)
        for tool in server_tools:
            name = _free_name(f"{prefix}__{_UNSAFE.sub('_', tool.name)}", used)
            used.add(name)
            catalog.targets[name] = (server, tool.name)
            function: dict[str, Any] = {"name": name, "parameters": tool.inputSchema or {"type": "object"}}
            if tool.description:
                function["description"] = tool.description
            catalog.definitions.append({"type": "function", "function": function})
    return catalog


def _host(server: str) -> str:
    """A request's own server is named by its host."""
    try:
        return urlsplit(server.removeprefix(ADHOC_PREFIX).partition(":")[2]).hostname or "mcp"
    except ValueError:
        return "mcp"


def _free_name(name: str, used: set[str]) -> str:
    name = name[:_NAME_LIMIT]
    if name not in used:
        return name
    number = 2
    while True:
        suffix = f"_{number}"
        candidate = name[: _NAME_LIMIT - len(suffix)] + suffix
        if candidate not in used:
            return candidate
        number += 1


def _invalid(param: str, reason: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{param}': {reason}.", param=param, code="invalid_value")
