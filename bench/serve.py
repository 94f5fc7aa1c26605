"""Serve one benchmark path on uvicorn, configured as ``relaygate serve`` configures itself.

``python -m bench.serve floor-aiohttp --upstream http://127.0.0.1:9100/v1 --port 9200``
``python -m bench.serve relaygate-min --upstream http://127.0.0.1:9100/v1 --port 9201``
``python -m bench.serve relaygate-mcp --upstream http://127.0.0.1:9100/v1 --port 9202`` (the proxy with a one-tool
MCP server, ``bench.mcp_server``, which it starts beside itself and stops with itself)

(relaygate with every middleware on is served by the real ``relaygate serve`` command instead.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request

import uvicorn
from starlette.types import Receive, Scope, Send

from bench.floor import CLIENTS, FloorApp
from relaygate import Gateway
from relaygate.settings import McpServerSettings, ProviderSettings, Settings

__all__ = ["MinimalStack", "minimal_settings"]


def minimal_settings(upstream: str, mcp_url: str | None = None) -> Settings:
    provider = ProviderSettings(kind="openai", base_url=upstream)
    servers = {"bench": McpServerSettings(url=mcp_url)} if mcp_url else {}
    return Settings(providers={"up": provider}, default_provider="up", database=None, mcp_servers=servers)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_mcp_server() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.mcp_server", "--port", str(port)])
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the benchmark's MCP server did not start") from None
            time.sleep(0.1)
    return process, f"http://127.0.0.1:{port}/mcp"


class MinimalStack:
    """relaygate's proxy with no middleware around it: the gateway's own cost, without its layers."""

    def __init__(self, settings: Settings) -> None:
        self.gateway = Gateway(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.gateway(scope, receive, send)
        else:
            await self.gateway.proxy(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("path", choices=[f"floor-{name}" for name in CLIENTS] + ["relaygate-min", "relaygate-mcp"])
    parser.add_argument("--upstream", required=True, help="the fake upstream's base URL, ending in /v1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    mcp_server, mcp_url = _start_mcp_server() if args.path == "relaygate-mcp" else (None, None)
    app = (
        MinimalStack(minimal_settings(args.upstream, mcp_url))
        if args.path.startswith("relaygate-")
        else FloorApp(upstream=args.upstream, client=args.path.removeprefix("floor-"))
    )
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning", backlog=4096)
    finally:
        if mcp_server is not None:
            mcp_server.terminate()
            mcp_server.wait(10)


if __name__ == "__main__":
    main()
