"""The management API: threads, analytics, usage, prices and the model registry, scoped to the caller's project.

:class:`ApiApp` answers its own routes and hands every other request to the app it wraps (the model
calls), so the ledger, limits and guards only ever see model calls. Every route reads the project that
:class:`~relaygate.middleware.auth.AuthMiddleware` settled (the key's, or the one named and allowed), and
every query is scoped by it: no key reads another project's rows. ``/admin/...`` and ``/projects/...``
need the admin key. Each route also answers under ``/v1`` (``/v1/threads``), and so under a project
prefix (``/{project_id}/v1/threads``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import anyio
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate._asgi import read_json_body, route_path, send_json
from relaygate.api import views
from relaygate.api.bodies import (
    MAX_OFFSET,
    CustomPrice,
    ModelCreateRequest,
    SummaryRequest,
    ThreadsRequest,
    UsageModelsRequest,
    WindowRequest,
)
from relaygate.context import RequestContext, get_context
from relaygate.errors import (
    GatewayError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    send_error,
)
from relaygate.ledger import Ledger
from relaygate.ledger.prices import model_price, stored_prices
from relaygate.pricing import ModelPrice, parse_price_key
from relaygate.requests import parse_request
from relaygate.store import Bucket, ModelEntry, ModelPrices

__all__ = ["ApiApp"]

Handler = Callable[["_Request"], Awaitable[None]]

_ID = r"(?P<id>[^/]{1,256})"
# Thread ids come from callers' X-Thread-Id headers and may hold a "/" (sent as %2F or as is).
_THREAD_ID = r"(?P<id>.{1,256}?)"
MAX_MESSAGES_PAGE = 1000
FLUSH_WAIT_SECONDS = 5.0

logger = logging.getLogger("relaygate.api")


class ApiApp:
    """Serves the management routes from the :class:`~relaygate.ledger.Ledger`; see the module docstring.

    ``providers`` are the names a registered model may be served by; ``projects`` the ids that may get
    custom prices.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ledger: Ledger,
        providers: Collection[str],
        projects: Collection[str],
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self.app = app
        self.ledger = ledger
        self.providers = frozenset(providers)
        self.projects = frozenset(projects)
        self.max_body_bytes = max_body_bytes
        routes: list[tuple[str, Mapping[str, Handler]]] = [
            ("/threads", {"POST": self._threads}),
            (f"/threads/{_THREAD_ID}/messages", {"GET": self._thread_messages}),
            (f"/threads/{_THREAD_ID}/cost", {"GET": self._thread_cost}),
            ("/analytics", {"POST": self._analytics}),
            ("/analytics/summary", {"POST": self._analytics_summary}),
            ("/usage/total", {"POST": self._usage_total}),
            ("/usage/models", {"POST": self._usage_models}),
            ("/pricing", {"GET": self._pricing}),
            ("/admin/models", {"POST": self._register_model, "GET": self._registered_models}),
            (f"/projects/{_ID}/custom_prices", {"POST": self._set_custom_prices, "GET": self._custom_prices}),
        ]
        self.routes = [(re.compile(f"^(?:/v1)?{pattern}/?$"), methods) for pattern, methods in routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        for pattern, route_methods in self.routes:
            match = pattern.match(path)
            if match is not None:
                methods = route_methods
                break
        else:
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            handler = methods.get(scope["method"])
            if handler is None:
                allowed = ", ".join(methods)
                raise MethodNotAllowedError(
                    f"Method {scope['method']} is not allowed for {scope['path']}; use {allowed}.",
                    headers=[(b"allow", allowed.encode())],
                )
            if not self.ledger.running:
                raise ServerError("The ledger has not started: the gateway's lifespan did not run.", status=503)
            if self.ledger.writer.pending:
                # Read-your-writes: what this gateway has accepted is in the figures it answers with; a
                # database that is slow or away must not hold the read longer than this.
                with anyio.move_on_after(FLUSH_WAIT_SECONDS):
                    await self.ledger.writer.flush()
            params = match.groupdict()  # the ASGI path is already percent-decoded
            await handler(_Request(scope, receive, send_tracked, get_context(scope), params, self.max_body_bytes))
        except GatewayError as error:
            if not started:
                await send_error(send, error)
        except Exception:
            logger.exception("management API: %s %s failed", scope["method"], scope["path"])
            if not started:
                await send_error(send, ServerError("The ledger could not answer: its database failed.", status=503))

    # --- threads --------------------------------------------------------------------------------------

    async def _threads(self, r: _Request) -> None:
        body = parse_request(ThreadsRequest, await r.body(optional=True))
        page = await self.ledger.store.list_threads(r.project, limit=body.limit, offset=body.offset)
        await r.json(
            {
                "threads": [views.thread(t) for t in page.items],
                "pagination": {"limit": body.limit, "offset": body.offset, "total": page.total},
            },
        )

    async def _thread_messages(self, r: _Request) -> None:
        query = dict(parse_qsl(r.scope.get("query_string", b"").decode("latin-1")))
        limit = _int_param(query, "limit", 100, 1, MAX_MESSAGES_PAGE)
        offset = _int_param(query, "offset", 0, 0, MAX_OFFSET)
        project = r.project
        page = await self.ledger.store.thread_messages(project, r.params["id"], limit=limit, offset=offset)
        if not page.total and await self.ledger.store.thread_cost(project, r.params["id"]) is None:
            raise _thread_not_found(r.params["id"])
        await r.json(
            {
                "thread_id": r.params["id"],
                "messages": [views.message(m) for m in page.items],
                "pagination": {"limit": limit, "offset": offset, "total": page.total},
            },
        )

    async def _thread_cost(self, r: _Request) -> None:
        figures = await self.ledger.store.thread_cost(r.project, r.params["id"])
        if figures is None:
            raise _thread_not_found(r.params["id"])
        await r.json({"thread_id": r.params["id"], **views.figures(figures)})

    # --- analytics and usage --------------------------------------------------------------------------

    async def _analytics(self, r: _Request) -> None:
        body = parse_request(UsageModelsRequest, await r.body(optional=True))
        start, end = body.window()
        bucket = body.min_unit or _bucket_for(end - start)
        points = await self.ledger.store.analytics(r.project, start, end, bucket)
        rows = [
            {"timestamp": views.timestamp(pt.bucket_start), "timestamp_us": views.time_us(pt.bucket_start),
             "cost": pt.figures.cost_usd, **views.figures(pt.figures)}
            for pt in points
        ]  # fmt: skip
        await r.json({**_window(start, end), "min_unit": bucket.value, "rows": rows})

    async def _analytics_summary(self, r: _Request) -> None:
        body = parse_request(SummaryRequest, await r.body(optional=True))
        start, end = body.window()
        project = r.project
        total = await self.ledger.store.usage_total(project, start, end)
        groups = []
        if body.group_by:
            for row in await self.ledger.store.analytics_summary(project, start, end, body.group_by):
                groups.append({**row.group, **views.figures(row.figures)})
        await r.json(
            {
                **_window(start, end),
                "total_requests": total.calls,
                "total_tokens": total.total_tokens,
                "total_cost": total.cost_usd,
                **views.figures(total),
                "groupBy": [dimension.value for dimension in body.group_by],
                "summary": groups,
            },
        )

    async def _usage_total(self, r: _Request) -> None:
        body = parse_request(WindowRequest, await r.body(optional=True))
        start, end = body.window()
        total = await self.ledger.store.usage_total(r.project, start, end)
        await r.json({**_window(start, end), **views.figures(total)})

    async def _usage_models(self, r: _Request) -> None:
        body = parse_request(UsageModelsRequest, await r.body(optional=True))
        start, end = body.window()
        rows = await self.ledger.store.usage_by_model(r.project, start, end, body.min_unit)
        models = []
        for row in rows:
            entry: dict[str, Any] = {"model": f"{row.provider}/{row.model}", "provider": row.provider}
            if row.bucket_start is not None:
                entry["timestamp"] = views.timestamp(row.bucket_start)
                entry["timestamp_us"] = views.time_us(row.bucket_start)
            models.append({**entry, **views.figures(row.figures)})
        unit = body.min_unit.value if body.min_unit is not None else None
        await r.json({**_window(start, end), "min_unit": unit, "models": models})

    # --- prices and the registry ----------------------------------------------------------------------

    async def _pricing(self, r: _Request) -> None:
        entries = self.ledger.prices.catalogue_entries(r.ctx.project_id)
        await r.json({"object": "list", "data": [views.price_entry(entry) for entry in entries]})

    async def _register_model(self, r: _Request) -> None:
        r.admin()
        body = parse_request(ModelCreateRequest, await r.body())
        if body.provider_info_id not in self.providers:
            raise InvalidRequestError(
                f"Unknown provider '{body.provider_info_id}'; the providers are: {', '.join(sorted(self.providers))}.",
                param="provider_info_id",
                code="invalid_value",
            )
        if body.project_id is not None and body.project_id not in self.projects:
            raise InvalidRequestError(f"Unknown project '{body.project_id}'.", param="project_id", code="invalid_value")
        price = body.price()
        prices = stored_prices(price) if price is not None else ModelPrices()
        # Image prices are kept as written (type_prices keyed quality/size, mp_price per megapixel).
        prices = dataclasses.replace(prices, per_image=body.per_image(), mp_price=body.mp_price)
        entry = await self.ledger.store.register_model(
            ModelEntry(
                name=body.model_name,
                provider=body.provider_info_id,
                project_id=body.project_id,
                model_name_in_provider=body.model_name_in_provider,
                model_type=body.model_type,
                description=body.description,
                owner_name=body.owner_name,
                priority=body.priority,
                context_size=body.context_size,
                public=body.public,
                capabilities=body.capabilities,
                input_types=body.input_types,
                output_types=body.output_types,
                tags=body.tags,
                parameters=body.parameters,
                prices=prices,
            )
        )
        await self.ledger.reload_prices()
        await r.json(views.model_entry(entry, model_price(entry.prices)))

    async def _registered_models(self, r: _Request) -> None:
        r.admin()
        entries = await self.ledger.store.registered_models()
        await r.json({"object": "list", "data": [views.model_entry(e, model_price(e.prices)) for e in entries]})

    async def _set_custom_prices(self, r: _Request) -> None:
        r.admin()
        project = self._known_project(r.params["id"])
        raw = await r.body()
        if not raw:
            raise InvalidRequestError(
                'Name at least one model: {"provider/model": {"per_input_token": …, "per_output_token": …}}.',
                code="missing_required_parameter",
            )
        prices: dict[str, ModelPrice] = {}
        for key, value in raw.items():
            try:
                parse_price_key(key)
            except ValueError as exc:
                raise InvalidRequestError(str(exc), param=key, code="invalid_value") from None
            if not isinstance(value, dict):
                raise InvalidRequestError(f"The price of '{key}' must be an object.", param=key, code="invalid_value")
            try:
                prices[key] = parse_request(CustomPrice, value).price()
            except InvalidRequestError as error:
                raise InvalidRequestError(
                    f"{key}: {error.message}", param=f"{key}.{error.param}", code=error.code
                ) from None
        await self.ledger.store.set_custom_prices(project, {key: stored_prices(price) for key, price in prices.items()})
        await self.ledger.reload_prices()
        await r.json(
            {"success": True, "message": "Custom prices updated successfully", "updated_models": list(prices)},
        )

    async def _custom_prices(self, r: _Request) -> None:
        r.admin()
        project = self._known_project(r.params["id"])
        stored = await self.ledger.store.custom_prices(project)
        data = {key: views.price(price) for key, prices in stored.items() if (price := model_price(prices))}
        await r.json({"project_id": project, "prices": data})

    # --- helpers --------------------------------------------------------------------------------------

    def _known_project(self, project_id: str) -> str:
        if project_id not in self.projects:
            raise NotFoundError(f"Project '{project_id}' does not exist.", code="project_not_found")
        return project_id


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses; the length keeps int() cheap.
    if not (value.isascii() and value.isdigit() and len(value) <= 12 and low <= int(value) <= high):
        message = f"'{name}' must be an integer from {low} to {high}."
        raise InvalidRequestError(message, param=name, code="invalid_value")
    return int(value)


def _bucket_for(span: timedelta) -> Bucket:
    if span <= timedelta(days=2):
        return Bucket.HOUR
    if span <= timedelta(days=93):
        return Bucket.DAY
    return Bucket.WEEK


def _window(start: datetime, end: datetime) -> dict[str, Any]:
    return {"start_time_us": views.time_us(start), "end_time_us": views.time_us(end)}


def _thread_not_found(thread_id: str) -> NotFoundError:
    return NotFoundError(f"No thread '{thread_id}' in this project.", param="thread_id", code="thread_not_found")


@dataclasses.dataclass(slots=True)
class _Request:
    """One management request: what a route handler reads and how it answers."""

    scope: Scope
    receive: Receive
    send: Send
    ctx: RequestContext
    params: dict[str, str]
    max_body_bytes: int

    @property
    def project(self) -> str:
        """The caller's project, which every query is scoped by."""
        if self.ctx.project_id is None:
            raise InvalidRequestError(
                "Name a project with X-Project-Id.", param="X-Project-Id", code="project_required"
            )
        return self.ctx.project_id

    def admin(self) -> None:
        if not self.ctx.is_admin:
            raise PermissionDeniedError("This route needs the admin key (X-Admin-Key).")

    async def body(self, *, optional: bool = False) -> dict[str, Any]:
        """The JSON body; with ``optional``, a request without one reads as ``{}``."""
        if optional and not _has_body(self.scope):
            return {}
        return await read_json_body(self.scope, self.receive, self.max_body_bytes)

    async def json(self, body: dict[str, Any]) -> None:
        await send_json(self.send, 200, orjson.dumps(body))
