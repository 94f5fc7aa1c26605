"""The management API: threads, analytics, usage, prices and the model registry, scoped to the caller's project.

:class:`ApiApp` answers its own routes and hands every other request to the app it wraps (the model
calls), so the ledger, limits and guards only ever see model calls. Every route reads the project that
:class:`~relaygate.middleware.auth.AuthMiddleware` settled (the key's, or the one named and allowed), and
every query is scoped by it: no key reads another project's rows. ``/admin/...`` and ``/projects/...``
need the admin key. Each route also answers under ``/v1`` (``/v1/threads``), and so under a project
prefix (``/{project_id}/v1/threads``). The routes are declared, with their documentation, in
:mod:`relaygate.api.routes`. With the ledger off (``database: null``) they answer 404 ``ledger_off``.

It also serves the OpenAPI document (``GET /openapi.json``, no key needed), built for the mount point or
``root_path`` it is served under.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import cast
from urllib.parse import parse_qsl

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate._asgi import route_path, send_json
from relaygate.api import answers, views
from relaygate.api.bodies import (
    MAX_OFFSET,
    CustomPrice,
    ModelCreateRequest,
    SummaryRequest,
    ThreadsRequest,
    UsageModelsRequest,
    WindowRequest,
)
from relaygate.api.exchange import ApiRequest, int_param
from relaygate.api.routes import API_ROUTES, MAX_MESSAGES_PAGE, OPENAPI
from relaygate.context import get_context
from relaygate.errors import (
    GatewayError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    ServerError,
    send_error,
)
from relaygate.ledger import Ledger
from relaygate.ledger.prices import model_price, stored_prices
from relaygate.pricing import ModelPrice, parse_price_key
from relaygate.requests import parse_request
from relaygate.routes import Route, RouteTable
from relaygate.store import Bucket, ModelEntry, ModelPrices

__all__ = ["ApiApp"]

Handler = Callable[["ApiRequest"], Awaitable[None]]
# The OpenAPI document as JSON, for the root path (mount point) it is served under.
DocumentSource = Callable[[str], bytes]

FLUSH_WAIT_SECONDS = 5.0

logger = logging.getLogger("relaygate.api")


class ApiApp:
    """Serves the management routes from the :class:`~relaygate.ledger.Ledger`; see the module docstring.

    ``providers`` are the names a registered model may be served by; ``projects`` the ids that may get
    custom prices. ``ledger`` is ``None`` when the gateway keeps none. ``document`` gives the OpenAPI
    document for a root path.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ledger: Ledger | None,
        providers: Collection[str],
        projects: Collection[str],
        document: DocumentSource | None = None,
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self.app = app
        self._ledger = ledger
        self.providers = frozenset(providers)
        self.projects = frozenset(projects)
        self.document = document
        self.max_body_bytes = max_body_bytes
        handlers: dict[str, Handler] = {
            "listThreads": self._threads,
            "listThreadMessages": self._thread_messages,
            "getThreadCost": self._thread_cost,
            "getAnalytics": self._analytics,
            "getAnalyticsSummary": self._analytics_summary,
            "getUsageTotal": self._usage_total,
            "getUsageByModel": self._usage_models,
            "listPrices": self._pricing,
            "registerModel": self._register_model,
            "listRegisteredModels": self._registered_models,
            "setCustomPrices": self._set_custom_prices,
            "getCustomPrices": self._custom_prices,
        }
        # A route without its handler fails here, at start-up; a handler without its route is never called.
        self.handlers: dict[Route, Handler] = {route: handlers[route.operation_id] for route in API_ROUTES}
        if document is not None:
            self.handlers[OPENAPI] = self._document
        self.routes = RouteTable(self.handlers)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise NotFoundError(
                "The ledger is off (database: null in the config), so there are no threads, analytics, usage or "
                "registered models to read. Set database to a SQLite path or a PostgreSQL URL to record calls.",
                code="ledger_off",
            )
        return self._ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        match = self.routes.match(route_path(scope))
        if match is None:
            await self.app(scope, receive, send)
            return
        methods = match.methods
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            route = methods.get(scope["method"])
            if route is None:
                allowed = ", ".join(methods)
                raise MethodNotAllowedError(
                    f"Method {scope['method']} is not allowed for {scope['path']}; use {allowed}.",
                    headers=[(b"allow", allowed.encode())],
                )
            if route is not OPENAPI:
                await self._ready()
            params = match.params  # the ASGI path is already percent-decoded
            request = ApiRequest(scope, receive, send_tracked, get_context(scope), params, self.max_body_bytes)
            await self.handlers[route](request)
        except GatewayError as error:
            if not started:
                await send_error(send, error)
        except Exception:
            logger.exception("management API: %s %s failed", scope["method"], scope["path"])
            if not started:
                await send_error(send, ServerError("The ledger could not answer: its database failed.", status=503))

    async def _ready(self) -> None:
        ledger = self.ledger
        if not ledger.running:
            raise ServerError("The ledger has not started: the gateway's lifespan did not run.", status=503)
        if ledger.writer.pending:
            # Read-your-writes: what this gateway has accepted is in the figures it answers with; a
            # database that is slow or away must not hold the read longer than this.
            with anyio.move_on_after(FLUSH_WAIT_SECONDS):
                await ledger.writer.flush()

    async def _document(self, r: ApiRequest) -> None:
        assert self.document is not None
        await send_json(r.send, 200, self.document(r.scope.get("root_path", "")))

    # --- threads --------------------------------------------------------------------------------------

    async def _threads(self, r: ApiRequest) -> None:
        body = parse_request(ThreadsRequest, await r.body(optional=True))
        page = await self.ledger.store.list_threads(r.project, limit=body.limit, offset=body.offset)
        answer: answers.ThreadList = {
            "threads": [views.thread(t) for t in page.items],
            "pagination": {"limit": body.limit, "offset": body.offset, "total": page.total},
        }
        await r.json(answer)

    async def _thread_messages(self, r: ApiRequest) -> None:
        query = dict(parse_qsl(r.scope.get("query_string", b"").decode("latin-1")))
        limit = int_param(query, "limit", 100, 1, MAX_MESSAGES_PAGE)
        offset = int_param(query, "offset", 0, 0, MAX_OFFSET)
        project = r.project
        page = await self.ledger.store.thread_messages(project, r.params["thread_id"], limit=limit, offset=offset)
        if not page.total and await self.ledger.store.thread_cost(project, r.params["thread_id"]) is None:
            raise _thread_not_found(r.params["thread_id"])
        answer: answers.ThreadMessagesAnswer = {
            "thread_id": r.params["thread_id"],
            "messages": [views.message(m) for m in page.items],
            "pagination": {"limit": limit, "offset": offset, "total": page.total},
        }
        await r.json(answer)

    async def _thread_cost(self, r: ApiRequest) -> None:
        figures = await self.ledger.store.thread_cost(r.project, r.params["thread_id"])
        if figures is None:
            raise _thread_not_found(r.params["thread_id"])
        answer: answers.ThreadCostAnswer = {"thread_id": r.params["thread_id"], **views.figures(figures)}
        await r.json(answer)

    # --- analytics and usage --------------------------------------------------------------------------

    async def _analytics(self, r: ApiRequest) -> None:
        body = parse_request(UsageModelsRequest, await r.body(optional=True))
        start, end = body.window()
        bucket = body.min_unit or _bucket_for(end - start)
        points = await self.ledger.store.analytics(r.project, start, end, bucket)
        rows: list[answers.AnalyticsRow] = [
            {"timestamp": views.timestamp(pt.bucket_start), "timestamp_us": views.time_us(pt.bucket_start),
             "cost": pt.figures.known_cost_usd, **views.figures(pt.figures)}
            for pt in points
        ]  # fmt: skip
        answer: answers.AnalyticsAnswer = {**_window(start, end), "min_unit": bucket.value, "rows": rows}
        await r.json(answer)

    async def _analytics_summary(self, r: ApiRequest) -> None:
        body = parse_request(SummaryRequest, await r.body(optional=True))
        start, end = body.window()
        project = r.project
        total = await self.ledger.store.usage_total(project, start, end)
        groups: list[answers.SummaryRow] = []
        if body.group_by:
            for row in await self.ledger.store.analytics_summary(project, start, end, body.group_by):
                # The group's keys are the dimensions asked for (provider, model, user, label, tag).
                groups.append(cast(answers.SummaryRow, {**row.group, **views.figures(row.figures)}))
        answer: answers.SummaryAnswer = {
            **_window(start, end),
            "total_requests": total.calls,
            **views.figures(total),
            "groupBy": [dimension.value for dimension in body.group_by],
            "summary": groups,
        }
        await r.json(answer)

    async def _usage_total(self, r: ApiRequest) -> None:
        body = parse_request(WindowRequest, await r.body(optional=True))
        start, end = body.window()
        total = await self.ledger.store.usage_total(r.project, start, end)
        answer: answers.UsageTotalAnswer = {**_window(start, end), **views.figures(total)}
        await r.json(answer)

    async def _usage_models(self, r: ApiRequest) -> None:
        body = parse_request(UsageModelsRequest, await r.body(optional=True))
        start, end = body.window()
        rows = await self.ledger.store.usage_by_model(r.project, start, end, body.min_unit)
        models: list[answers.UsageModelRow] = []
        for row in rows:
            # cast: mypy asks a literal with ** to name the keys that are NotRequired too.
            entry = cast(
                answers.UsageModelRow,
                {"model": f"{row.provider}/{row.model}", "provider": row.provider, **views.figures(row.figures)},
            )
            if row.bucket_start is not None:
                entry["timestamp"] = views.timestamp(row.bucket_start)
                entry["timestamp_us"] = views.time_us(row.bucket_start)
            models.append(entry)
        unit = body.min_unit.value if body.min_unit is not None else None
        answer: answers.UsageModelsAnswer = {**_window(start, end), "min_unit": unit, "models": models}
        await r.json(answer)

    # --- prices and the registry ----------------------------------------------------------------------

    async def _pricing(self, r: ApiRequest) -> None:
        entries = self.ledger.prices.catalogue_entries(r.ctx.project_id)
        answer: answers.PriceList = {"object": "list", "data": [views.price_entry(entry) for entry in entries]}
        await r.json(answer)

    async def _register_model(self, r: ApiRequest) -> None:
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

    async def _registered_models(self, r: ApiRequest) -> None:
        r.admin()
        entries = await self.ledger.store.registered_models()
        answer: answers.RegisteredModelList = {
            "object": "list",
            "data": [views.model_entry(e, model_price(e.prices)) for e in entries],
        }
        await r.json(answer)

    async def _set_custom_prices(self, r: ApiRequest) -> None:
        r.admin()
        project = self._known_project(r.params["project_id"])
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
        answer: answers.CustomPricesUpdated = {
            "success": True,
            "message": "Custom prices updated successfully",
            "updated_models": list(prices),
        }
        await r.json(answer)

    async def _custom_prices(self, r: ApiRequest) -> None:
        r.admin()
        project = self._known_project(r.params["project_id"])
        stored = await self.ledger.store.custom_prices(project)
        data = {key: views.price(price) for key, prices in stored.items() if (price := model_price(prices))}
        answer: answers.CustomPricesAnswer = {"project_id": project, "prices": data}
        await r.json(answer)

    # --- helpers --------------------------------------------------------------------------------------

    def _known_project(self, project_id: str) -> str:
        if project_id not in self.projects:
            raise NotFoundError(f"Project '{project_id}' does not exist.", code="project_not_found")
        return project_id


def _bucket_for(span: timedelta) -> Bucket:
    if span <= timedelta(days=2):
        return Bucket.HOUR
    if span <= timedelta(days=93):
        return Bucket.DAY
    return Bucket.WEEK


def _window(start: datetime, end: datetime) -> answers.Window:
    return {"start_time_us": views.time_us(start), "end_time_us": views.time_us(end)}


def _thread_not_found(thread_id: str) -> NotFoundError:
    return NotFoundError(f"No thread '{thread_id}' in this project.", param="thread_id", code="thread_not_found")
