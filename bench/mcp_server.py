"""The MCP server of the benchmark's tool-loop path: one tool, ``ping``, answering ``pong``, over streamable HTTP.

``python -m bench.mcp_server --port 9300`` (``GET /health`` answers once it listens).
"""

from __future__ import annotations

import argparse

from mcp.server.fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

TOOL = "ping"


def build(port: int) -> FastMCP:
    server = FastMCP("bench", host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool()
    def ping() -> str:
        """Answers pong."""
        return "pong"

    @server.custom_route("/health", methods=["GET"])  # type: ignore[untyped-decorator]
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    build(parser.parse_args().port).run(transport="streamable-http")


if __name__ == "__main__":
    main()
