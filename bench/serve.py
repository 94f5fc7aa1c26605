"""Serve one benchmark path on uvicorn, configured as ``relaygate serve`` configures itself.

``python -m bench.serve floor-aiohttp --upstream http://127.0.0.1:9100/v1 --port 9200``
``python -m bench.serve relaygate-min --upstream http://127.0.0.1:9100/v1 --port 9201``

(relaygate with every middleware on is served by the real ``relaygate serve`` command instead.)
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.types import Receive, Scope, Send

from bench.floor import CLIENTS, FloorApp
from relaygate import Gateway
from relaygate.settings import ProviderSettings, Settings

__all__ = ["MinimalStack", "minimal_settings"]


def minimal_settings(upstream: str) -> Settings:
    provider = ProviderSettings(kind="openai", base_url=upstream)
    return Settings(providers={"up": provider}, default_provider="up", database=None)


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
    parser.add_argument("path", choices=[f"floor-{name}" for name in CLIENTS] + ["relaygate-min"])
    parser.add_argument("--upstream", required=True, help="the fake upstream's base URL, ending in /v1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = (
        MinimalStack(minimal_settings(args.upstream))
        if args.path == "relaygate-min"
        else FloorApp(upstream=args.upstream, client=args.path.removeprefix("floor-"))
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
