"""The MCP server of the benchmark's tool-loop path: one tool, ``ping``, answering ``pong``, over streamable HTTP.

``python -m bench.mcp_server --port 9300`` (``GET /health`` answers once it listens).
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

TOOL = "ping"


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def build() -> Starlette:
    server = FastMCP("bench", host="127.0.0.1", log_level="WARNING")

    @server.tool()
    def ping() -> str:
        """Answers pong."""
        return "pong"

    app = server.streamable_http_app()
    app.add_route("/health", health, methods=["GET"])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(build(), host="127.0.0.1", port=port, access_log=False, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
