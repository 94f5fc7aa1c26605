"""The :class:`Ledger`: prices calls as their usage becomes known and records them off the request's path.

Per call, :meth:`Ledger.begin` puts a :class:`PricedCall` among the context's response observers. It
prices the call as soon as the usage is known (a whole answer, or a stream's usage chunk), before the
adapter writes that object out, so the caller sees ``usage.cost`` and, on whole answers, the
``X-Cost-Usd`` header. :meth:`Ledger.finish` then queues the call's record and its thread messages on the
batch writer; nothing on the request's path waits for the database.

Prices come from the :class:`~relaygate.pricing.PriceBook`. The registry and the custom prices live in
the store, so that every gateway sharing a database prices alike: they are loaded at start and reloaded
every ``refresh_interval`` seconds (a gateway that changes them applies the change at once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc

from relaygate.answers import AnswerCollector
from relaygate.ids import new_uuid
from relaygate.image_sizes import size_label
from relaygate.ledger.prices import model_price
from relaygate.ledger.records import call_record, turn_messages
from relaygate.pricing import ModelPrice, PriceBook, cost_of, image_call_cost
from relaygate.store import BatchWriter, CallRecord, MessageRecord, ModelEntry, Store

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.guards import GuardResult
    from relaygate.providers.base import Provider

__all__ = ["COST_HEADER", "Ledger", "PricedCall", "RecordWriter"]

logger = logging.getLogger("relaygate.ledger")

COST_HEADER = b"x-cost-usd"


class RecordWriter(Protocol):
    """Where the ledger queues calls' records: a :class:`~relaygate.store.BatchWriter`, or the recorder's
    writer (:class:`~relaygate.recorder.RecorderWriter`)."""

    def submit(self, call: CallRecord, messages: Sequence[MessageRecord] = ()) -> bool: ...

    @property
    def pending(self) -> int: ...

    async def flush(self) -> None: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any: ...


class PricedCall:
    """One call's observer: prices it when its usage is known and collects the answer for the thread.

    The cost of a call is its model call's plus what the guards' model calls (judges) cost; it is
    ``None`` only while nothing of it is known.
    """

    __slots__ = ("answer", "banked", "id", "images", "ledger", "model_cost", "size")

    def __init__(self, ledger: Ledger, *, collect_answer: bool) -> None:
        self.ledger = ledger
        self.id = new_uuid()
        self.answer = AnswerCollector() if collect_answer else None
        self.images: int | None = None
        # What an image answer says of its images (gpt-image-1 tells the size and quality it chose).
        self.size: tuple[str | None, str | None] = (None, None)
        self.model_cost: float | None = None
        # What a tool loop's earlier model calls cost (relaygate.mcp.loop).
        self.banked: list[float | None] = []

    def total(self, ctx: RequestContext) -> float | None:
        """The call's cost as known now, also set on ``ctx.cost_usd``."""
        # Summed in the order of the parts (earlier model calls, this one, the guards'), without lists of them.
        total: float = 0
        known = False
        for cost in self.banked:
            if cost is not None:
                total += cost
                known = True
        if self.model_cost is not None:
            total += self.model_cost
            known = True
        if ctx.guard_results:
            for cost in self.ledger.guard_costs(ctx):
                if cost is not None:
                    total += cost
                    known = True
        if known:
            ctx.cost_usd = round(total, 9)
        return ctx.cost_usd

    def on_response(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        if ctx.endpoint == "images" and isinstance(body.get("data"), list):
            self.images = len(body["data"])
            self.size = (_str(body.get("size")), _str(body.get("quality")))
        self.model_cost = self.ledger.price(ctx, images=self.images, answered=self.size)
        self.total(ctx)
        if self.answer is not None:
            self.answer.add_response(body)

    def on_chunk(self, ctx: RequestContext, chunk: dict[str, Any]) -> None:
        if self.answer is not None:
            self.answer.add_chunk(chunk)
        if chunk.get("usage"):
            self.model_cost = self.ledger.price(ctx)
            self.total(ctx)

    def on_end(self, ctx: RequestContext) -> None:
        if self.model_cost is None and ctx.usage is not None:
            self.model_cost = self.ledger.price(ctx, images=self.images, answered=self.size)
        self.total(ctx)
        if self.banked and ctx.attempts:
            ctx.attempts[-1].cost_usd, ctx.attempts[-1].usage = self.model_cost, ctx.usage

    def on_model_call_done(self, ctx: RequestContext) -> None:
        """A tool loop's model call is over and another follows: its cost is banked (and noted on its attempt)."""
        if self.model_cost is None and ctx.usage is not None:
            self.model_cost = self.ledger.price(ctx)
        if ctx.attempts:
            ctx.attempts[-1].cost_usd, ctx.attempts[-1].usage = self.model_cost, ctx.usage
        self.banked.append(self.model_cost)
        self.model_cost = None
        if self.answer is not None:
            # The thread keeps that call's message among the loop's (RequestContext.loop_messages).
            self.answer = AnswerCollector()
        self.total(ctx)


class Ledger:
    """Prices and records model calls; see the module docstring.

    ``store_messages(project_id)`` says whether a project's thread messages (prompts and answers) are
    stored; calls are recorded either way.
    """

    def __init__(
        self,
        store: Store,
        *,
        prices: PriceBook | None = None,
        store_messages: Callable[[str], bool] = lambda project_id: True,
        provider_kinds: Mapping[str, str] | None = None,
        refresh_interval: float = 30.0,
        writer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.prices = prices if prices is not None else PriceBook()
        self.store_messages = store_messages
        # Guards name the provider of a model they called; its kind finds the catalogue price.
        self.provider_kinds = dict(provider_kinds or {})
        self.refresh_interval = refresh_interval
        # Calls' records go here: a BatchWriter in process, or the recorder's writer (relaygate serve).
        self.writer: RecordWriter = BatchWriter(store, **(writer_options or {}))
        self._stack: AsyncExitStack | None = None
        # Registered models by (project id, or "" for every project; "provider/name"), reloaded with the prices.
        self._registered: dict[tuple[str, str], ModelEntry] = {}

    @property
    def running(self) -> bool:
        return self._stack is not None

    async def start(self) -> None:
        """Open the store (creating or upgrading its schema), load the stored prices, start writing."""
        if self._stack is not None:
            return
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(self.store)
            await self.reload_prices()
            group = await stack.enter_async_context(anyio.create_task_group())
            # Registered last, so it is cancelled first; the writer below is closed (and flushed) before
            # the store it writes to.
            stack.callback(group.cancel_scope.cancel)
            await stack.enter_async_context(self.writer)
            if self.refresh_interval > 0:
                group.start_soon(self._refresh_prices)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack

    async def close(self) -> None:
        """Write every call accepted so far, then close the store."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def reload_prices(self) -> None:
        """Take the registry's and the projects' prices from the store into the price book."""
        entries = await self.store.registered_models()
        registered: dict[str, dict[str, ModelPrice]] = {}
        for entry in entries:
            price = model_price(entry.prices)
            if price is not None:
                served = f"{entry.provider}/{entry.model_name_in_provider or entry.name}"
                registered.setdefault(entry.project_id or "", {})[served] = price
        self.prices.set_registered(registered)
        self._registered = {(entry.project_id or "", f"{entry.provider}/{entry.name}"): entry for entry in entries}
        for project_id, stored in (await self.store.all_custom_prices()).items():
            book: dict[str, ModelPrice] = {}
            for key, prices in stored.items():
                if (price := model_price(prices)) is not None:
                    # Calls are priced by the name the provider serves; a registered model's own name maps to it.
                    book[self.resolve(project_id, key) or key] = price
            self.prices.clear_project_prices(project_id)
            self.prices.set_project_prices(project_id, book)

    async def _refresh_prices(self) -> None:
        while True:
            await anyio.sleep(self.refresh_interval)
            try:
                await self.reload_prices()
            except Exception:  # a database that is away for a moment must not stop the refreshes
                logger.warning("ledger: could not reload prices from the store", exc_info=True)

    # --- the model catalogue (relaygate.context.ModelCatalog) -----------------------------------------

    def resolve(self, project_id: str | None, model: str) -> str | None:
        """``provider/name`` of a registered model, as the ``provider/model`` it is served as."""
        entry = self._registered.get((project_id or "", model)) or self._registered.get(("", model))
        if entry is None or not entry.model_name_in_provider or entry.model_name_in_provider == entry.name:
            return None
        return f"{entry.provider}/{entry.model_name_in_provider}"

    def registered(self, project_id: str | None) -> list[dict[str, Any]]:
        out = []
        for (owner, key), entry in sorted(self._registered.items()):
            if owner and owner != project_id:
                continue
            if project_id is None and not entry.public:
                continue  # a caller without a key (public_catalogue) sees the public entries only
            price = model_price(entry.prices)
            out.append(
                {
                    "id": key,
                    "object": "model",
                    "created": 0,
                    "owned_by": entry.owner_name or entry.provider,
                    "provider": entry.provider,
                    "model_type": entry.model_type,
                    "description": entry.description,
                    "context_size": entry.context_size,
                    "capabilities": entry.capabilities,
                    **({"pricing": _pricing(price)} if price is not None else {}),
                }
            )
        return out

    def pricing(self, provider: Provider, model: str, project_id: str | None) -> dict[str, Any] | None:
        price = self.prices.price(provider.kind, model, provider_name=provider.name, project_id=project_id)
        return _pricing(price) if price is not None else None

    # --- the request path ---------------------------------------------------------------------------

    def begin(self, ctx: RequestContext) -> PricedCall:
        """Follow a model call on ``ctx``: price it and, for threads, collect its answer."""
        project = ctx.project_id or "default"
        call = PricedCall(self, collect_answer=ctx.thread_id is not None and self.store_messages(project))
        ctx.observers.append(call)
        return call

    def finish(self, ctx: RequestContext, call: PricedCall, *, status: int, endpoint: str) -> None:
        """Queue the call's record (and its thread messages); never waits."""
        call.total(ctx)  # guards that judged the answer may have added to it
        try:
            costs = [self._guard_cost(result, ctx) for result in ctx.guard_results]
            record = call_record(ctx, status=status, endpoint=endpoint, call_id=call.id, guard_costs=costs)
            messages = turn_messages(ctx, record, call.answer) if call.answer is not None else []
        except ValueError:
            logger.exception("ledger: the call could not be recorded")
            return
        self.writer.submit(record, messages)

    def model_cost(self, ctx: RequestContext) -> float | None:
        """What the call's own model call cost, as priced from its usage (or images); ``None``: not known."""
        call = _priced_call(ctx)
        return call.model_cost if call is not None else None

    def estimated(self, ctx: RequestContext, model_cost: float) -> None:
        """Record ``model_cost`` as the model call's cost when its usage never came (the limits' estimate of a
        call cut short), so that the call's record, and the spend reloaded from it, count it."""
        call = _priced_call(ctx)
        if call is None:
            known = [cost for cost in self.guard_costs(ctx) if cost is not None]
            ctx.cost_usd = round(model_cost + sum(known), 9)
            return
        call.model_cost = model_cost
        call.total(ctx)

    def guard_costs(self, ctx: RequestContext) -> list[float | None]:
        """What the model calls of the guards cost (``None`` where no price is known)."""
        return [self._guard_cost(result, ctx) for result in ctx.guard_results if result.usage is not None]

    def _guard_cost(self, result: GuardResult, ctx: RequestContext) -> float | None:
        if result.usage is None or result.provider is None or result.model is None:
            return None
        kind = self.provider_kinds.get(result.provider, result.provider)
        price = self.prices.price(kind, result.model, provider_name=result.provider, project_id=ctx.project_id)
        return cost_of(result.usage, price)

    def price(
        self,
        ctx: RequestContext,
        *,
        images: int | None = None,
        answered: tuple[str | None, str | None] = (None, None),
    ) -> float | None:
        """What the call cost, from its usage (or its images) at the project's prices; ``None``: unknown.

        An image call's images are priced at the size and quality its answer reports (``answered``), else at
        those it asked for (``size``, or ``width`` and ``height``)."""
        route = ctx.route
        if route is None:
            return None
        price = self.prices.price(
            route.provider.kind, route.model, provider_name=route.provider.name, project_id=ctx.project_id
        )
        if images is not None and ctx.endpoint == "images":
            body = ctx.body or {}
            size = answered[0] if answered[0] not in (None, "auto") else size_label(body) or _str(body.get("size"))
            quality = answered[1] if answered[1] not in (None, "auto") else _str(body.get("quality"))
            return image_call_cost(price, ctx.usage, images, size, quality)
        return cost_of(ctx.usage, price)


def _priced_call(ctx: RequestContext) -> PricedCall | None:
    return next((observer for observer in ctx.observers if isinstance(observer, PricedCall)), None)


def _pricing(price: ModelPrice) -> dict[str, Any]:
    """A price as ``GET /v1/models`` shows it: USD per 1M tokens (and per image, and per megapixel)."""
    out: dict[str, Any] = {"unit": "USD per 1M tokens"}
    for name in ("input", "output", "cached_input", "cache_write", "image_input", "image_output", "mp_price"):
        value = getattr(price, name)
        if value is not None:
            out[name] = float(value)
    if price.images is not None:
        out["images"] = {
            quality: {size: float(usd) for size, usd in sizes.items()} for quality, sizes in price.images.prices.items()
        }
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
