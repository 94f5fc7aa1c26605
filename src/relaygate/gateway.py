"""The gateway: the whole middleware stack around the proxy, built from settings in one place."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate import gctune
from relaygate.api import ApiApp
from relaygate.context import get_context
from relaygate.counters import split_counters_url
from relaygate.dialects import Dialect, DialectMiddleware, DialectRoutes
from relaygate.dialects.images import ImagesDialect
from relaygate.dialects.messages import MessagesDialect
from relaygate.dialects.responses import ResponsesDialect
from relaygate.errors import ADMIN_PREFIXES
from relaygate.fallback import Fallback
from relaygate.guards import Guards
from relaygate.keys import KeyRing, key_digest, key_id
from relaygate.layers import build_ledger, build_limiter
from relaygate.mcp import McpPool
from relaygate.mcp.app import McpApp
from relaygate.mcp.loop import ToolLoop
from relaygate.middleware import (
    AuthMiddleware,
    GuardsMiddleware,
    LedgerMiddleware,
    LimitsMiddleware,
    ProjectScopeMiddleware,
    TracingMiddleware,
)
from relaygate.middleware.auth import OPEN_PROJECT
from relaygate.middleware.byok import ProviderKeyMiddleware
from relaygate.openapi import OpenApiDocument
from relaygate.pricing import PriceBook
from relaygate.providers import build_providers, preset_provider
from relaygate.proxy import ProxyApp
from relaygate.routes import RouteTable, stack_routes
from relaygate.routing import ModelRouter
from relaygate.secrets import REQUEST_SECRETS, Secrets, configured_secrets, install_log_filter
from relaygate.settings import Settings, load_settings
from relaygate.telemetry import Export, Telemetry
from relaygate.ui import UiApp

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from relaygate.recorder import Recorder

__all__ = ["Gateway"]

logger = logging.getLogger("relaygate")

# Routes that need X-Admin-Key: the model registry and the projects' custom prices.
# What public_catalogue: true lets anyone read without a key (seed 002 shows them at the root, unauthenticated).
CATALOGUE_PATHS = ("/models", "/v1/models", "/pricing", "/v1/pricing")


class Gateway:
    """relaygate built from :class:`~relaygate.settings.Settings`.

    ``gateway.app`` is the ASGI app: serve it, or mount it (``app.mount("/llm", gateway.app)``).
    Served on its own it runs its start-up and shutdown from the ASGI lifespan; mounted, it cannot,
    because Starlette does not pass lifespan events to mounted apps, so give the host app
    ``lifespan=gateway.lifespan`` or enter ``gateway.lifespan(app)`` inside the host's own.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        rng: random.Random | None = None,
        dialects: Sequence[Dialect] = (),
    ) -> None:
        """``rng`` drives routing choices and retry jitter; a seeded one makes them repeatable. ``dialects`` are
        inbound APIs served besides the built-in ones (see :mod:`relaygate.dialects`)."""
        self.settings = settings if settings is not None else Settings()
        # Every secret of the configuration, scrubbed from relayed provider errors, spans and logs.
        self.secrets = Secrets(configured_secrets(self.settings))
        install_log_filter(self.secrets)
        telemetry_settings = self.settings.telemetry
        # Without providers given here, spans go to the global TracerProvider: the host's, or the one
        # `relaygate serve` installs, or OpenTelemetry's no-op when nobody set one.
        self.telemetry = (
            Telemetry(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                capture_content=telemetry_settings.capture_content,
                content_max_bytes=telemetry_settings.capture_content_max_bytes,
                langdb_attributes=telemetry_settings.langdb_attributes,
            )
            if telemetry_settings.enabled
            else None
        )
        # Providers relaygate installed itself (relaygate serve), flushed at shutdown.
        self.export: Export | None = None
        # The collector's thresholds once started (relaygate serve sets them; a mounted gateway leaves the
        # host's collector alone): see relaygate.gctune.
        self.gc_thresholds: tuple[int, int, int] | None = None
        # The child process that exports spans and writes the ledger (relaygate serve): see use_recorder.
        self.recorder: Recorder | None = None
        self.providers = build_providers(self.settings)
        # One price book for the ledger, the limits and the optimized routing strategy.
        self.prices = PriceBook(overrides=self.settings.prices)
        self.router = ModelRouter(
            self.providers,
            default_provider=self.settings.default_provider,
            models=self.settings.models,
            retry=self.settings.retry,
            breaker=self.settings.breaker,
            rng=rng,
            prices=self.prices,
            aliases=self.settings.model_aliases,
            presets=preset_provider,
            routers=self.settings.routers,
            script_limits=self.settings.router_scripts,
            script_projects=[project.id for project in self.settings.projects if project.request_scripts],
        )
        counters = self.settings.counters
        # The optimized strategy's figures are shared when limit counters are (and only through Redis), under
        # the counters' own key prefix.
        self.metrics_sync = None
        if counters is not None and counters.startswith(("redis://", "rediss://", "unix://")):
            from relaygate.routing.shared import RedisMetricsSync

            server, prefix = split_counters_url(counters)
            self.metrics_sync = RedisMetricsSync(
                self.router.metrics, server, keys=self.router.target_keys, prefix=f"{prefix}:routing"
            )
        self.keys = KeyRing.from_projects(
            {project.id: [key.get_secret_value() for key in project.keys] for project in self.settings.projects}
        )
        admin_key = self.settings.admin_key.get_secret_value() if self.settings.admin_key else None
        self.ledger = build_ledger(self.settings, self.providers, self.prices)
        # Sessions with the configured MCP servers, opened at start-up (see relaygate.mcp).
        self.mcp = McpPool(self.settings.mcp_servers, options=self.settings.mcp)
        # Guard models are called in-process through the same router and providers as any request.
        self.guards = Guards.from_settings(self.settings, router=self.router, telemetry=self.telemetry)
        self.limiter = build_limiter(self.settings, self.router, self.ledger, self.prices, self.guards, self.telemetry)
        # Chat requests that name mcp_servers: their model calls and tool calls, each priced, limited and guarded.
        tool_loop = ToolLoop(
            pool=self.mcp,
            options=self.settings.mcp,
            fallback=Fallback(self.router, telemetry=self.telemetry),
            telemetry=self.telemetry,
            guards=self.guards,
            limiter=self.limiter,
        )
        self.proxy = ProxyApp(
            router=self.router,
            max_body_bytes=self.settings.max_body_bytes,
            telemetry=self.telemetry,
            catalog=self.ledger,
            tool_loop=tool_loop,
        )
        # Inbound APIs besides Chat Completions, translated at the edge of the one canonical call.
        self.dialects: list[Dialect] = [
            ResponsesDialect(ledger=self.ledger),
            ImagesDialect(providers=self.providers),
            MessagesDialect(
                router=self.router, model_entries=self.proxy.model_entries, max_body_bytes=self.settings.max_body_bytes
            ),
            *dialects,
        ]
        byok_projects = frozenset(project.id for project in self.settings.projects if project.byok)
        # The stack, outermost first: tracing sees every answer, refusals included; the project is
        # known before the key is checked against it; the dialects translate everything that leaves (auth's
        # refusals included) and serve their own routes once the key is checked; the management API answers
        # its own routes and passes model calls on (a caller's own provider key is taken off the request right
        # inside auth, once its project is known); the ledger records what limits and guards refuse; limits
        # hold a call's worst case before the guards and the proxy see it, and settle it once they are done;
        # guards sit right around the proxy, so that what they let through (or redact) is exactly what goes
        # upstream.
        stack: ASGIApp = self.proxy
        stack = GuardsMiddleware(
            stack, guards=self.guards, max_body_bytes=self.settings.max_body_bytes, telemetry=self.telemetry
        )
        if self.limiter is not None:
            stack = LimitsMiddleware(stack, limiter=self.limiter, max_body_bytes=self.settings.max_body_bytes)
        if self.ledger is not None:
            stack = LedgerMiddleware(stack, ledger=self.ledger)
        # Without a ledger the management routes still answer: a 404 that says the ledger is off.
        stack = ApiApp(
            stack,
            ledger=self.ledger,
            providers=self.providers,
            projects=[project.id for project in self.settings.projects] or [OPEN_PROJECT],
            document=self._document,
        )
        stack = DialectRoutes(stack)
        # The configured MCP servers' tools, served to MCP clients at /mcp behind the key check.
        stack = self.mcp_app = McpApp(
            stack,
            pool=self.mcp,
            limiter=self.limiter,
            ledger=self.ledger,
            telemetry=self.telemetry,
            max_body_bytes=self.settings.max_body_bytes,
        )
        stack = ProviderKeyMiddleware(stack, allows=lambda project_id: project_id in byok_projects)
        stack = AuthMiddleware(
            stack,
            keys=self.keys,
            admin_key_digest=key_digest(admin_key) if admin_key else None,
            public_paths=[route.path for route in stack_routes(stack) if route.access == "public"],
            admin_prefixes=ADMIN_PREFIXES,
            open_paths=CATALOGUE_PATHS if self.settings.public_catalogue else (),
        )
        stack = dialect_layer = DialectMiddleware(stack, dialects=self.dialects)
        # Every route the stack serves, from the layers that dispatch on them: the OpenAPI document, the
        # paths that need no key and the spans' names all come from this one list.
        self.routes = RouteTable(stack_routes(stack))
        self.openapi = OpenApiDocument(self.routes)
        stack = ProjectScopeMiddleware(stack, refuse=dialect_layer.refuse)
        stack = TracingMiddleware(stack, telemetry=self.telemetry, routes=self.routes, refuse=dialect_layer.refuse)
        # The dashboard answers /ui itself, outside the API's key check (it signs in by cookie) and outside
        # tracing (its pages are not model calls).
        stack = UiApp(
            stack,
            settings=self.settings.ui,
            router=self.router,
            keys=self.keys,
            admin_key_digest=key_digest(admin_key) if admin_key else None,
            ledger=self.ledger,
            limiter=self.limiter,
            project_keys={
                project.id: [key_id(key_digest(key.get_secret_value())) for key in project.keys]
                for project in self.settings.projects
            },
        )
        self.stack = stack
        self._started = False
        self._warned = False
        self._lifespans = 0

    def use_recorder(self, recorder: Recorder) -> None:
        """Have ``recorder`` (a child process, started with the gateway) write the ledger's rows, and aggregate
        and export the calls' histograms when its config names a metrics endpoint; spans reach it through the
        tracer provider :func:`~relaygate.telemetry.configure_export` installed."""
        from relaygate.recorder import RecorderWriter

        self.recorder = recorder
        if self.ledger is not None:
            self.ledger.writer = RecorderWriter(recorder)
        if self.telemetry is not None and recorder.config.metrics_endpoint is not None:
            self.telemetry.record_in(recorder)

    def _document(self, root_path: str) -> bytes:
        return self.openapi.json(root_path)

    @classmethod
    def from_config(cls, path: str | None = None) -> Gateway:
        """Load the config file (or ``$RELAYGATE_CONFIG``, ``./relaygate.yaml``, the embedded default)."""
        return cls(load_settings(path))

    @property
    def app(self) -> Gateway:
        """The ASGI app (the gateway itself; the name reads well in ``app.mount("/llm", gateway.app)``)."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if not self._started and not self._warned:
            self._warned = True
            logger.warning(
                "relaygate is serving before its start-up ran: connection pools open on first use and are never "
                "closed. Mounted apps need the host to run gateway.lifespan (see docs/guides/mounting.md)."
            )
        recorder = self.recorder
        if recorder is not None and recorder.congested:
            # The recorder is behind (it gets only the CPU time requests leave): let it catch up first.
            await recorder.room()
        ctx = get_context(scope)
        # A host that gave the request secrets of its own before handing it over keeps them.
        ctx.secrets = self.secrets.extended(ctx.secrets.known) if ctx.secrets.known else self.secrets
        # The log filter finds the request's own secrets (RequestContext.add_secret) through this.
        token = REQUEST_SECRETS.set(ctx)
        try:
            await self.stack(scope, receive, send)
        finally:
            REQUEST_SECRETS.reset(token)

    @property
    def started(self) -> bool:
        return self._started

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """Start-up and shutdown around a host's lifespan; nested or repeated entries share one start."""
        if self._lifespans == 0:
            await self.startup()
        self._lifespans += 1
        try:
            yield
        finally:
            self._lifespans -= 1
            if self._lifespans == 0:
                await self.shutdown()

    async def startup(self) -> None:
        if self._started:
            return
        try:
            for provider in self.providers.values():
                await provider.start()
            if self.ledger is not None:
                await self.ledger.start()
            if self.recorder is not None:
                # After the ledger: its store's schema is made or upgraded before the recorder opens it.
                await self.recorder.start()
            if self.limiter is not None:
                await self.limiter.start()
            if self.metrics_sync is not None:
                await self.metrics_sync.start()
            # A server that cannot be reached is a warning, not a failed start.
            await self.mcp.start()
            await self.mcp_app.start()
        except BaseException:
            await self.shutdown()
            raise
        self._started = True
        gctune.tune(self.gc_thresholds)
        logger.info("relaygate ready; providers: %s", ", ".join(f"{n} ({p.kind})" for n, p in self.providers.items()))
        if not self.keys:
            logger.warning(
                "no API keys are configured: every request is accepted into project 'default'. "
                "Add projects with keys to the config to require them."
            )

    async def shutdown(self) -> None:
        self._started = False
        await self.mcp_app.aclose()
        await self.mcp.aclose()
        if self.metrics_sync is not None:
            await self.metrics_sync.stop()
        if self.limiter is not None:
            await self.limiter.aclose()
        if self.ledger is not None:
            # Every call accepted so far is written before the process goes.
            await self.ledger.close()
        for provider in [*self.providers.values(), *self.router.preset_providers.values()]:
            await provider.aclose()
        # Script routers' V8 engines (and their threads).
        self.router.scripts.close()
        if self.export is not None:
            # Queued spans are exported before the process goes; a slow collector costs the
            # exporter's own timeout, off the event loop.
            await anyio.to_thread.run_sync(self.export.shutdown)
        if self.recorder is not None:
            # Everything queued is handed over, then written and exported by the recorder before it exits.
            await self.recorder.stop()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await self.startup()
        except Exception as exc:
            logger.exception("relaygate failed to start")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await self.shutdown()
        await send({"type": "lifespan.shutdown.complete"})
