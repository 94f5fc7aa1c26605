"""MCP servers the gateway connects to (``mcp_servers:``) and how its tool loop runs (``mcp:``).

```yaml
mcp_servers:
  calc:
    url: http://127.0.0.1:9100/mcp
    transport: http            # http (streamable HTTP) | sse | ws
    headers: {Authorization: "Bearer ${CALC_TOKEN}"}
    # tools: [add, mul]        # only these tools; default: all the server lists
    # projects: [proj-a]       # who may use it; default: every project
mcp:
  max_iterations: 8            # model calls in one request's tool loop
  tool_timeout: 30             # seconds per tool call
  allowed_hosts: []            # hosts a request's own server_url may name; default: none
```

A request names configured servers in ``mcp_servers`` (``[{"name": "calc"}]``); their tools are added to its
tools and the gateway runs the tool loop (see :mod:`relaygate.mcp`).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from relaygate.settings.base import SettingsModel

__all__ = ["McpServerSettings", "McpSettings", "McpTransport", "TRANSPORT_SCHEMES"]

McpTransport = Literal["http", "sse", "ws"]
# The URL schemes each transport speaks.
TRANSPORT_SCHEMES: dict[str, tuple[str, ...]] = {
    "http": ("http", "https"),
    "sse": ("http", "https"),
    "ws": ("ws", "wss"),
}


class McpServerSettings(SettingsModel):
    """One MCP server (``mcp_servers.<name>`` in the config file)."""

    # The server's endpoint: http(s)://host/mcp for streamable HTTP, http(s)://host/sse for SSE, ws(s)://... for
    # WebSocket.
    url: str
    # How the gateway talks to it: http (streamable HTTP), sse or ws (WebSocket).
    transport: McpTransport = "http"
    # Headers sent with every request to the server (an Authorization token: "Bearer ${CALC_TOKEN}"); http and
    # sse only.
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    # Only these of the server's tools are offered to models and MCP clients; left out, every tool it lists.
    tools: list[str] | None = None
    # The projects that may use the server; left out, every project.
    projects: list[str] | None = None

    @model_validator(mode="after")
    def _url_fits_transport(self) -> McpServerSettings:
        schemes = TRANSPORT_SCHEMES[self.transport]
        try:
            parts = urlsplit(self.url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in schemes or not parts.hostname:
            raise ValueError(
                f"url {self.url!r} does not fit transport {self.transport!r}: it must be a "
                f"{' or '.join(s + '://' for s in schemes)} URL with a host"
            )
        if self.transport == "ws" and self.headers:
            raise ValueError(
                "headers: the MCP SDK's WebSocket client sends no headers of its own; with transport ws, put a "
                "token in the url's query, or use transport http"
            )
        return self

    def header_values(self) -> dict[str, str]:
        """The headers as they are sent."""
        return {name: value.get_secret_value() for name, value in self.headers.items()}


class McpSettings(SettingsModel):
    """How the tool loop runs (``mcp:`` in the config file)."""

    # Model calls in one request's tool loop; the loop stops there with finish_reason "max_iterations".
    max_iterations: int = Field(8, ge=1, le=100)
    # Seconds one tool call may take; past that the model gets an error result saying so.
    tool_timeout: float = Field(30.0, gt=0, le=3600)
    # Hosts a request's own server_url may name (exact host names, or "*.example.com" for its subdomains);
    # left empty, requests may name configured servers only, and any server_url gets a 403.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Seconds a server's tool list is kept before it is listed again (a list-changed notification refreshes
    # it at once).
    tools_ttl: float = Field(300.0, gt=0)
    # Seconds to connect to a server and open its session.
    connect_timeout: float = Field(10.0, gt=0, le=300)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        out = []
        for host in hosts:
            bare = host.removeprefix("*.")
            if not bare or "/" in bare or ":" in bare or "*" in bare:
                raise ValueError(
                    f"allowed_hosts: {host!r} is not a host name (write api.example.com or *.example.com, "
                    "without scheme or port)"
                )
            out.append(host.lower())
        return out

    def allows(self, host: str) -> bool:
        """Whether a request's own ``server_url`` may name ``host``."""
        host = host.lower().rstrip(".")
        for allowed in self.allowed_hosts:
            if allowed.startswith("*."):
                if host.endswith(allowed[1:]):
                    return True
            elif host == allowed:
                return True
        return False
