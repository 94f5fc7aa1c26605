"""Finished spans as compact, picklable tuples, and back: what crosses from the serving process to the recorder.

A span crosses as plain values (ints, strings, dicts of attribute values), packed by
:class:`~relaygate.recorder.tracer.RecordedSpan` when it ends; the recorder rebuilds an SDK
:class:`~opentelemetry.sdk.trace.ReadableSpan` from them, with the span limits the SDK would have applied
and each value cleaned as it would have cleaned it, and hands it to the OTLP exporter, which encodes it
exactly as it would have in the serving process.

A span's tuple: ``(name, context, parent, kind, start, end, attributes, events, links, status, scope)``,
where a context is :data:`ContextTuple`, ``attributes`` a dict or ``None``, ``events`` a list of
``(name, attributes, timestamp)`` or ``None``, ``links`` a list of ``(context, attributes)`` or ``None``,
``status`` ``(code, description)`` and ``scope`` ``(name, version, schema_url, attributes)`` or ``None``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

__all__ = ["ContextTuple", "SpanTuple", "pack_context", "unpack_span"]

SpanTuple = tuple[Any, ...]
ContextTuple = tuple[int, int, int, bool, tuple[tuple[str, str], ...]]


def pack_context(context: SpanContext) -> ContextTuple:
    state = tuple(context.trace_state.items()) if context.trace_state else ()
    return (context.trace_id, context.span_id, int(context.trace_flags), context.is_remote, state)


def _unpack_context(packed: ContextTuple | None) -> SpanContext | None:
    if packed is None:
        return None
    trace_id, span_id, flags, remote, state = packed
    return SpanContext(
        trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(flags), trace_state=TraceState(list(state))
    )


def unpack_span(packed: SpanTuple, resource: Resource, limits: SpanLimits) -> ReadableSpan:
    """The span a :class:`~relaygate.recorder.tracer.RecordedSpan` packed, as the SDK's exporters take it."""
    name, context, parent, kind, start, end, attributes, events, links, status, scope = packed
    bounded_events: BoundedList[Any] = BoundedList(limits.max_events)
    for event_name, attrs, timestamp in events or ():
        bounded_events.append(Event(event_name, _bounded(attrs, limits.max_event_attributes, limits), timestamp))
    bounded_links: BoundedList[Any] = BoundedList(limits.max_links)
    for link_context, attrs in links or ():
        bounded_links.append(
            Link(_unpack_context(link_context), _bounded(attrs, limits.max_link_attributes, limits))  # type: ignore[arg-type]
        )
    return ReadableSpan(
        name=name,
        context=_unpack_context(context),
        parent=_unpack_context(parent),
        resource=resource,
        attributes=_span_attributes(attributes, limits),
        events=bounded_events,
        links=bounded_links,
        kind=SpanKind(kind),
        status=Status(StatusCode(status[0]), status[1]),
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope(*scope) if scope is not None else None,
    )


_PLAIN = frozenset((str, bool, int, float))


def _plain(value: Any) -> bool:
    kind = type(value)
    return kind in _PLAIN or (kind is tuple and all(type(item) in _PLAIN for item in value))


def _span_attributes(attributes: dict[str, Any] | None, limits: SpanLimits) -> Any:
    return _attributes(attributes, limits.max_span_attributes, limits.max_span_attribute_length)


def _bounded(attributes: dict[str, Any] | None, maxlen: int | None, limits: SpanLimits) -> Any:
    return _attributes(attributes, maxlen, limits.max_attribute_length)


def _attributes(attributes: dict[str, Any] | None, maxlen: int | None, max_value_len: int | None) -> Any:
    """Attributes as the SDK keeps them. Most are within the limits and hold only plain values, which the
    SDK's cleaning would leave as they are: those keep their dict (cleaning each value again, and reading
    it back through the SDK's bounded mapping, is most of what rebuilding and encoding a span costs)."""
    if (
        attributes
        and max_value_len is None
        and (maxlen is None or len(attributes) <= maxlen)
        and all(type(key) is str and key and _plain(value) for key, value in attributes.items())
    ):
        return attributes
    return BoundedAttributes(maxlen, attributes, immutable=True, max_value_len=max_value_len)
