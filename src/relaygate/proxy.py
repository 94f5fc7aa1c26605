"""The proxy: the innermost ASGI app, serving the OpenAI endpoints in front of the providers."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio
import orjson
from starlette.types import Message, Receive, Scope, Send

from relaygate._asgi import Headers, read_json_body, route_path, send_json
from relaygate.context import ModelCatalog, RequestContext, get_context
from relaygate.endpoints import CHAT, EMBEDDINGS, HEALTH, IMAGES, MODEL, MODELS, ROOT_MODELS
from relaygate.errors import (
    ClientDisconnected,
    GatewayError,
    MethodNotAllowedError,
    NotFoundError,
    ServerError,
    admin_path,
    send_error,
    sse_error_frame,
)
from relaygate.fallback import Fallback
from relaygate.mcp.loop import ToolLoop
from relaygate.providers.base import Endpoint, Provider
from relaygate.requests import (
    ChatCompletionRequest,
    EmbeddingRequest,
    ImageGenerationRequest,
    normalise_chat,
    parse_request,
)
from relaygate.route_headers import route_headers
from relaygate.routes import Route, RouteTable
from relaygate.routing import ModelRouter, Plan
from relaygate.telemetry import Telemetry

__all__ = ["ProxyApp"]

logger = logging.getLogger("relaygate.proxy")

Handler = Callable[[Scope, Receive, Send, RequestContext], Awaitable[None]]

SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # nginx reads this and stops buffering the stream, whatever proxy_buffering says.
    (b"x-accel-buffering", b"no"),
]
MODELS_PREFIX = "/v1/models/"


class ProxyApp:
    """Parses the request once, routes its model to providers and relays the answer.

    The model gives a plan (:class:`~relaygate.routing.ModelRouter`): one target, or a virtual model's
    targets in order; :class:`~relaygate.fallback.Fallback` calls them, retrying and falling back,
    until one answers. Streams are relayed frame by frame as the provider sends them; the response
    starts only once the first frame is there, so a provider that fails or stays silent
    (``timeouts.first_chunk``) can still be replaced by the next target, or gets a real HTTP error
    status. When the client leaves mid-stream the upstream response is closed at once. Every error,
    here or upstream, leaves in the OpenAI error shape.
    """

    def __init__(
        self,
        *,
        router: ModelRouter,
        max_body_bytes: int = 32 * 1024 * 1024,
        telemetry: Telemetry | None = None,
        catalog: ModelCatalog | None = None,
        tool_loop: ToolLoop | None = None,
    ) -> None:
        """``catalog`` (the ledger) adds registered models and prices to routing and to ``GET /v1/models``;
        ``tool_loop`` runs chat requests that name ``mcp_servers`` (see :mod:`relaygate.mcp.loop`)."""
        self.router = router
        self.tool_loop = tool_loop
        self.catalog = catalog
        self.max_body_bytes = max_body_bytes
        self.telemetry = telemetry
        self.fallback = Fallback(router, telemetry=telemetry)
        # The routes are declared, with their documentation, in relaygate.endpoints.
        self.handlers: dict[Route, Handler] = {
            CHAT: self._chat,
            EMBEDDINGS: self._embeddings,
            IMAGES: self._images,
            MODELS: self._models,
            ROOT_MODELS: self._models,
            MODEL: self._model,
            HEALTH: self._health,
        }
        self.routes = RouteTable(self.handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        ctx = get_context(scope)
        status = 0

        async def send_tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            handler = self._handler(scope)
            await handler(scope, receive, send_tracked, ctx)
        except GatewayError as error:
            ctx.scrub(error)
            ctx.error = ctx.error or error.code or error.type
            if not status:
                # A path below the admin API's prefixes that no route serves answers in its shape too.
                await send_error(send_tracked, error, _routed(ctx), admin=admin_path(route_path(scope)))
        except (ClientDisconnected, OSError):
            ctx.error = "client_disconnected"
        except Exception:
            logger.exception("unexpected error while serving %s %s", scope["method"], scope["path"])
            ctx.error = "server_error"
            if not status:
                await send_error(send_tracked, ServerError("The gateway failed to handle the request."), _routed(ctx))
        finally:
            if ctx.route is not None:
                ctx.record_end(status or 499, ctx.error)

    def _handler(self, scope: Scope) -> Handler:
        path = route_path(scope)
        if len(path) > 1:
            path = path.rstrip("/")
        method = scope["method"]
        match = self.routes.match(path)
        if match is None:
            raise NotFoundError(f"Invalid URL ({method} {scope['path']}).", code="unknown_url")
        route = match.methods.get(method)
        if route is None:
            allowed = ", ".join(match.methods)
            raise MethodNotAllowedError(
                f"Method {method} is not allowed for {scope['path']}; use {allowed}.",
                headers=[(b"allow", allowed.encode())],
            )
        return self.handlers[route]

    async def _chat(self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext) -> None:
        body = await read_json_body(scope, receive, self.max_body_bytes)
        request = ctx.request = parse_request(ChatCompletionRequest, body)
        normalise_chat(body)
        self._note_user(ctx, request.extra)
        prepared = await self.tool_loop.prepare(ctx, body) if self.tool_loop is not None else None
        plan = await self._plan(scope, ctx, "chat", request.model, body)
        if prepared is not None and self.tool_loop is not None:
            if request.stream:
                await self.tool_loop.stream(receive, send, ctx, plan, prepared, usage_chunk=request.wants_usage_chunk)
            else:
                answer = await self.tool_loop.whole(receive, ctx, plan, prepared)
                await send_json(send, 200, answer, route_headers(ctx))
        elif request.stream:
            await self._stream(receive, send, ctx, plan, body, usage_chunk=request.wants_usage_chunk)
        else:
            await self._whole(receive, send, ctx, plan, "chat", body)

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext) -> None:
        body = await read_json_body(scope, receive, self.max_body_bytes)
        request = ctx.request = parse_request(EmbeddingRequest, body)
        self._note_user(ctx, request.extra)
        plan = await self._plan(scope, ctx, "embeddings", request.model, body)
        await self._whole(receive, send, ctx, plan, "embeddings", body)

    async def _images(self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext) -> None:
        body = await read_json_body(scope, receive, self.max_body_bytes)
        request = ctx.request = parse_request(ImageGenerationRequest, body)
        self._note_user(ctx, request.extra)
        plan = await self._plan(scope, ctx, "images", request.model, body)
        await self._whole(receive, send, ctx, plan, "images", body)

    async def _plan(
        self, scope: Scope, ctx: RequestContext, endpoint: Endpoint, model: str, body: dict[str, Any]
    ) -> Plan:
        ctx.endpoint = endpoint
        if self.catalog is not None:
            model = self.catalog.resolve(ctx.project_id, model) or model
        await self.router.prepare(model, body, ctx=ctx, headers=scope["headers"])
        plan = self.router.plan(model, body, ctx=ctx, headers=scope["headers"])
        ctx.route = plan.targets[0].route
        return plan

    @staticmethod
    def _note_user(ctx: RequestContext, extra: Any) -> None:
        if extra is not None and extra.user is not None:
            ctx.user = extra.user.model_dump(exclude_none=True)

    async def _whole(
        self, receive: Receive, send: Send, ctx: RequestContext, plan: Plan, endpoint: Endpoint, body: dict[str, Any]
    ) -> None:
        # A client that leaves while the answer is awaited cancels the upstream call and its retries. The
        # watcher is a bare task, not a task group: it costs a whole answer a few microseconds, not tens.
        with anyio.CancelScope() as scope:
            watcher = asyncio.ensure_future(receive())
            watcher.add_done_callback(functools.partial(_on_disconnect, scope=scope, ctx=ctx))
            try:
                _, answer = await self.fallback.whole(ctx, plan, endpoint, body)
            finally:
                watcher.cancel()
        if scope.cancelled_caught:
            raise ClientDisconnected()
        # Only after the watcher stopped: servers answer receive() with a disconnect once the response is
        # complete, which it must not take for a client that left.
        await send_json(send, 200, answer, route_headers(ctx))

    async def _stream(
        self,
        receive: Receive,
        send: Send,
        ctx: RequestContext,
        plan: Plan,
        body: dict[str, Any],
        *,
        usage_chunk: bool,
    ) -> None:
        opened = await self.fallback.stream(ctx, plan, body, usage_chunk=usage_chunk)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *route_headers(ctx)]})
            await send({"type": "http.response.body", "body": opened.first, "more_body": True})
            finished = False  # stays so when the client leaves and the relay is cancelled
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope, ctx)
                finished = await _relay(send, opened.frames, ctx)
                group.cancel_scope.cancel()
            # Only now: servers answer receive() with a disconnect once the response is complete, which
            # the watcher above must not take for a client that left.
            if finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.fallback.finish(ctx, opened)

    async def _models(self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext) -> None:
        await send_json(send, 200, orjson.dumps({"object": "list", "data": await self.model_entries(ctx)}))

    async def _model(self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext) -> None:
        wanted = route_path(scope).rstrip("/")[len(MODELS_PREFIX) :]
        for entry in await self.model_entries(ctx):
            if entry["id"] == wanted:
                await send_json(send, 200, orjson.dumps(entry))
                return
        raise NotFoundError(f"The model '{wanted}' does not exist.", param="model", code="model_not_found")

    async def model_entries(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """The entries of ``GET /v1/models``: virtual models, aliases, the providers' models, registered models."""
        virtual = [
            {
                "id": model.name,
                "object": "model",
                "created": 0,
                "owned_by": "relaygate",
                "provider": "relaygate",
                "strategy": model.strategy,
                # A conditional model's routes' targets too: every provider model it may call.
                "targets": model.target_keys(),
                **({"description": model.description} if model.description else {}),
            }
            for model in self.router.virtual.values()
        ]
        # Aliases that name a model (patterns name none); see relaygate.routing.aliases.
        aliases = [
            {
                "id": name,
                "object": "model",
                "created": 0,
                "owned_by": "relaygate",
                "provider": "relaygate",
                "alias_of": to,
            }
            for name, to in self.router.aliases.exact.items()
        ]
        providers = list(self.router.providers.values())
        listed: list[list[str]] = [[] for _ in providers]

        async def list_one(index: int) -> None:
            listed[index] = await providers[index].list_models()

        async with anyio.create_task_group() as group:
            for index in range(len(providers)):
                group.start_soon(list_one, index)
        entries = [
            {
                "id": f"{provider.name}/{model}",
                "object": "model",
                "created": 0,
                "owned_by": provider.name,
                "provider": provider.name,
                **self._pricing(provider, model, ctx),
            }
            for provider, models in zip(providers, listed, strict=True)
            for model in models
        ]
        registered = self.catalog.registered(ctx.project_id) if self.catalog is not None else []
        return virtual + aliases + entries + registered

    def _pricing(self, provider: Provider, model: str, ctx: RequestContext) -> dict[str, Any]:
        pricing = self.catalog.pricing(provider, model, ctx.project_id) if self.catalog is not None else None
        return {"pricing": pricing} if pricing is not None else {}

    async def _health(self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext) -> None:
        await send_json(send, 200, b'{"status":"ok"}')


def _routed(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """The routing headers of an error: once routing chose a target, every answer says which (and how
    many attempts were made); before that (a bad model or router object) there is nothing to say."""
    return route_headers(ctx) if ctx.route is not None else []


async def _relay(send: Send, frames: AsyncGenerator[bytes, None], ctx: RequestContext) -> bool:
    """Send the frames after the first; once the response has started, errors become the last event.

    ``False`` when the client has gone; otherwise the caller ends the response.
    """
    try:
        async for out in frames:
            await send({"type": "http.response.body", "body": out, "more_body": True})
    except OSError:
        ctx.error = "client_disconnected"  # servers of ASGI spec 2.4 raise it from send()
        return False
    except GatewayError as error:
        ctx.scrub(error)
        ctx.error = error.code or error.type
        await send({"type": "http.response.body", "body": sse_error_frame(error), "more_body": True})
    except Exception:
        logger.exception("unexpected error while relaying a stream")
        ctx.error = "server_error"
        failure = ServerError("The gateway failed while relaying the stream.")
        await send({"type": "http.response.body", "body": sse_error_frame(failure), "more_body": True})
    return True


def _on_disconnect(watcher: asyncio.Future[Message], *, scope: anyio.CancelScope, ctx: RequestContext) -> None:
    """The watcher of a whole answer's ``receive()`` is done: a client that left cancels the call."""
    if watcher.cancelled() or watcher.exception() is not None:
        return
    if watcher.result()["type"] == "http.disconnect":
        ctx.error = "client_disconnected"
        scope.cancel()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope, ctx: RequestContext) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            ctx.error = "client_disconnected"
            scope.cancel()
            return
