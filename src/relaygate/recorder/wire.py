"""Finished spans as compact, picklable tuples, and back: what crosses from the serving process to the recorder.

A span crosses as plain values (ints, strings, dicts of attribute values); the recorder rebuilds an SDK
:class:`~opentelemetry.sdk.trace.ReadableSpan` from them and hands it to the OTLP exporter, which encodes
it exactly as it would have in the serving process.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

__all__ = ["SpanTuple", "pack_span", "unpack_span"]

SpanTuple = tuple[Any, ...]


def _context(context: SpanContext | None) -> tuple[int, int, int, bool, tuple[tuple[str, str], ...]] | None:
    if context is None:
        return None
    state = tuple(context.trace_state.items()) if context.trace_state else ()
    return (context.trace_id, context.span_id, int(context.trace_flags), context.is_remote, state)


def _unpack_context(packed: tuple[int, int, int, bool, tuple[tuple[str, str], ...]] | None) -> SpanContext | None:
    if packed is None:
        return None
    trace_id, span_id, flags, remote, state = packed
    return SpanContext(
        trace_id, span_id, is_remote=remote, trace_flags=TraceFlags(flags), trace_state=TraceState(list(state))
    )


def pack_span(span: ReadableSpan) -> SpanTuple:
    """``span`` as a tuple of plain values (see the module docstring)."""
    scope = span.instrumentation_scope
    status = span.status
    return (
        span.name,
        _context(span.context),
        _context(span.parent),
        span.kind.value,
        span.start_time,
        span.end_time,
        dict(span.attributes) if span.attributes else None,
        [(event.name, dict(event.attributes or {}), event.timestamp) for event in span.events] or None,
        [(_context(link.context), dict(link.attributes or {})) for link in span.links] or None,
        (status.status_code.value, status.description),
        (scope.name, scope.version, scope.schema_url) if scope is not None else None,
    )


def unpack_span(packed: SpanTuple, resource: Resource) -> ReadableSpan:
    """The span :func:`pack_span` packed, as the SDK's exporters take it."""
    name, context, parent, kind, start, end, attributes, events, links, status, scope = packed
    return ReadableSpan(
        name=name,
        context=_unpack_context(context),
        parent=_unpack_context(parent),
        resource=resource,
        attributes=attributes,
        events=[Event(event_name, attrs, timestamp) for event_name, attrs, timestamp in events or ()],
        links=[Link(_unpack_context(link_context), attrs) for link_context, attrs in links or ()],  # type: ignore[arg-type]
        kind=SpanKind(kind),
        status=Status(StatusCode(status[0]), status[1]),
        start_time=start,
        end_time=end,
        instrumentation_scope=InstrumentationScope(*scope) if scope is not None else None,
    )
