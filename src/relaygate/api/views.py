"""The JSON the management API answers with: the store's records and figures in the seeds' field names.

Costs are USD numbers (``total_cost``, ``cost``), tokens are ``input_tokens``/``output_tokens`` as in the
seeds' ``UsageTotal`` and ``ThreadCost``; every figure the ledger has is added beside them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from relaygate.api.answers import FigureFields, MessageView, PriceEntryView, PriceView, RegisteredModel, ThreadView
from relaygate.pricing import ModelPrice, PriceEntry
from relaygate.store import Figures, MessageRecord, ModelEntry, ThreadSummary

__all__ = ["figures", "message", "model_entry", "price", "price_entry", "thread", "time_us", "timestamp"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def time_us(when: datetime) -> int:
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def figures(f: Figures) -> FigureFields:
    return {
        "total_cost": f.known_cost_usd,
        "unpriced_requests": f.unpriced,
        "requests": f.calls,
        "errors": f.errors,
        "input_tokens": f.prompt_tokens,
        "output_tokens": f.completion_tokens,
        "total_tokens": f.total_tokens,
        "cached_tokens": f.cached_tokens,
        "cache_write_tokens": f.cache_write_tokens,
        "reasoning_tokens": f.reasoning_tokens,
        "avg_latency_ms": f.avg_latency_ms,
        "avg_ttft_ms": f.avg_ttft_ms,
    }


def thread(t: ThreadSummary) -> ThreadView:
    return {
        "id": t.thread_id,
        "title": t.title,
        "created_at": timestamp(t.first_seen),
        "updated_at": timestamp(t.last_seen),
        "requests": t.calls,
        "message_count": t.message_count,
        "total_cost": t.known_cost_usd,
        "unpriced_requests": t.unpriced,
    }


def message(m: MessageRecord) -> MessageView:
    out: MessageView = {
        "id": str(m.id),
        "role": m.role,
        "content": m.content,
        "created_at": timestamp(m.created_at),
        "model": m.model,
        "cost": m.cost_usd,
        "request_id": str(m.call_id) if m.call_id is not None else None,
    }
    if m.tool_calls is not None:
        out["tool_calls"] = m.tool_calls
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out


def price(p: ModelPrice) -> PriceView:
    """USD per 1M tokens (and per image), as the pricing catalogue writes them."""
    out: PriceView = {
        "input_price": _number(p.input),
        "output_price": _number(p.output),
        "cached_input_price": _number(p.cached_input),
        "cache_write_price": _number(p.cache_write),
    }
    if p.image_input is not None:
        out["image_input_price"] = _number(p.image_input)
    if p.image_output is not None:
        out["image_output_price"] = _number(p.image_output)
    if p.mp_price is not None:
        out["mp_price"] = _number(p.mp_price)
    if p.images is not None:
        out["image_prices"] = {
            quality: {size: float(usd) for size, usd in sizes.items()} for quality, sizes in p.images.prices.items()
        }
    return out


def price_entry(entry: PriceEntry) -> PriceEntryView:
    return {
        "model": f"{entry.provider}/{entry.model}",
        "provider": entry.provider,
        "model_name": entry.model,
        "source": entry.source,
        "unit": "USD per 1M tokens",
        **price(entry.price),
    }


def model_entry(m: ModelEntry, model_price: ModelPrice | None) -> RegisteredModel:
    """A registered model in the seeds' ``Model`` shape; token prices per token, as they were given."""
    return {
        "id": str(m.id),
        "model_name": m.name,
        "description": m.description,
        "provider_info_id": m.provider,
        "project_id": m.project_id,
        "public": m.public,
        "model_type": m.model_type,
        "input_token_price": _per_token(model_price.input if model_price else None),
        "output_token_price": _per_token(model_price.output if model_price else None),
        "context_size": m.context_size,
        "capabilities": m.capabilities,
        "input_types": m.input_types,
        "output_types": m.output_types,
        "tags": m.tags,
        "type_prices": m.prices.per_image,
        "mp_price": m.prices.mp_price,
        "model_name_in_provider": m.model_name_in_provider or m.name,
        "owner_name": m.owner_name,
        "priority": m.priority,
        "parameters": m.parameters,
    }


def _per_token(usd_per_million: Any) -> str | None:
    # The seeds' Model shows prices per token as strings ("0.00001").
    if usd_per_million is None:
        return None
    return format((Decimal(usd_per_million) / 1_000_000).normalize(), "f")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
