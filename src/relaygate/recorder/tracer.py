"""A tracer provider whose spans go straight to the recorder: the SDK's tracer without its per-span cost.

With the SDK's :class:`~opentelemetry.sdk.trace.TracerProvider`, every span takes a lock per attribute, builds
:class:`~opentelemetry.attributes.BoundedAttributes` (cleaning each value), goes through the span processors
as a :class:`~opentelemetry.sdk.trace.ReadableSpan` copy and is then packed into a tuple for the recorder.
When a recorder encodes and exports the spans (``relaygate serve``), that work can wait for the recorder:
:class:`RecordedSpan` keeps its attributes in a plain dict and, once ended, hands the recorder the same tuple
:func:`~relaygate.recorder.wire.unpack_span` rebuilds; the recorder applies the span limits and cleans the
values there, as the SDK would have here. The sampler and id generator are the SDK's (the ones its provider
would choose), so what is sampled, the ids and the trace flags are as before; the default sampler
(parent-based, always on) is decided inline.

Only for a process relaygate owns (``relaygate serve``): a gateway mounted in a host app uses the host's
tracer provider.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    use_span,
)
from opentelemetry.util._decorator import _agnosticcontextmanager
from opentelemetry.util.types import Attributes, AttributeValue

from relaygate.recorder.wire import ContextTuple, SpanTuple, pack_context

if TYPE_CHECKING:
    from relaygate.recorder.client import Recorder

__all__ = ["RecordedSpan", "RecordingTracer", "RecordingTracerProvider"]

logger = logging.getLogger("relaygate.recorder")

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)


class RecordingTracerProvider(trace_api.TracerProvider):
    """Hands every sampled span, once ended, to ``recorder`` (see the module docstring)."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        resource: Resource | None = None,
        sampler: Sampler | None = None,
        id_generator: IdGenerator | None = None,
    ) -> None:
        self.recorder = recorder
        self.resource = resource if resource is not None else Resource.create({})
        if sampler is None:
            # The SDK's provider reads its sampler from the environment (OTEL_TRACES_SAMPLER); a throwaway one
            # tells which it would use.
            sampler = SdkTracerProvider(shutdown_on_exit=False).sampler
        self.sampler = sampler
        # The default sampler's decision is the parent's flag (or "sampled" for a root): decided inline.
        self.default_sampler = (
            sampler.get_description() == ParentBased(ALWAYS_ON).get_description()  # type: ignore[no-untyped-call]
        )
        self.id_generator = id_generator if id_generator is not None else RandomIdGenerator()
        self.random_trace_ids = self.id_generator.is_trace_id_random()
        self._tracers: dict[tuple[str, str, str | None, str | None], RecordingTracer] = {}
        self._lock = threading.Lock()
        self.stopped = False

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> RecordingTracer:
        # The scope as the recorder rebuilds it (InstrumentationScope's arguments), its attributes included.
        scope = (instrumenting_module_name or "", instrumenting_library_version or "", schema_url, attributes)
        key = (*scope[:3], repr(sorted(attributes.items())) if attributes else None)
        with self._lock:
            tracer = self._tracers.get(key)
            if tracer is None:
                tracer = self._tracers[key] = RecordingTracer(self, scope)
        return tracer

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # spans are handed over as they end; the recorder's own stop flushes them

    def shutdown(self) -> None:
        self.stopped = True


class RecordingTracer(trace_api.Tracer):
    def __init__(self, provider: RecordingTracerProvider, scope: tuple[str, str, str | None, Attributes]) -> None:
        self.provider = provider
        self.scope = scope

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        provider = self.provider
        parent: SpanContext | None = trace_api.get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = provider.id_generator.generate_trace_id()
            random_trace_id = provider.random_trace_ids
        else:
            trace_id = parent.trace_id
            random_trace_id = parent.trace_flags.random_trace_id
        if provider.default_sampler:
            sampled = parent is None or parent.trace_flags.sampled
            decision = Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP
            trace_state = parent.trace_state if parent is not None else None
        else:
            result = provider.sampler.should_sample(context, trace_id, name, kind, attributes, links)
            decision, attributes, trace_state = result.decision, result.attributes, result.trace_state
            sampled = decision is Decision.RECORD_AND_SAMPLE
        flags = _SAMPLED if sampled else _NOT_SAMPLED
        if random_trace_id:
            flags = TraceFlags(flags | TraceFlags.RANDOM_TRACE_ID)
        span_context = SpanContext(trace_id, provider.id_generator.generate_span_id(), False, flags, trace_state)
        if decision is Decision.DROP:
            return NonRecordingSpan(span_context)
        return RecordedSpan(
            self,
            name,
            span_context,
            parent,
            kind,
            attributes,
            links,
            start_time if start_time is not None else time_ns(),
            sampled=sampled,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        )

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace_api.Span]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


def _frozen(value: Any) -> Any:
    # The SDK copies a list value when it is set, so a caller changing the list later changes nothing.
    return tuple(value) if type(value) is list else value


class RecordedSpan(trace_api.Span):
    """A span recorded as plain values; see the module docstring."""

    __slots__ = (
        "_tracer",
        "_name",
        "_context",
        "_parent",
        "_kind",
        "_attributes",
        "_events",
        "_links",
        "_start",
        "_end",
        "_status",
        "_sampled",
        "_record_exception",
        "_set_status_on_exception",
    )

    def __init__(
        self,
        tracer: RecordingTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Attributes,
        links: Sequence[Link] | None,
        start: int,
        *,
        sampled: bool,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes: dict[str, Any] = (
            {key: _frozen(value) for key, value in attributes.items()} if attributes else {}
        )
        self._events: list[tuple[str, dict[str, Any], int]] | None = None
        self._links: list[tuple[ContextTuple | None, dict[str, Any]]] | None = None
        for link in links or ():
            self._add_link(link.context, link.attributes)
        self._start = start
        self._end: int | None = None
        self._status = _UNSET
        self._sampled = sampled
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end is None

    def _ended(self, what: str) -> bool:
        if self._end is None:
            return False
        logger.warning("%s on ended span.", what)
        return True

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._ended("Setting attribute"):
            return
        attributes = self._attributes
        # The SDK's attributes keep the order of the last set: a key set again moves to the end.
        if key in attributes:
            del attributes[key]
        attributes[key] = _frozen(value)

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if self._ended("Adding event"):
            return
        if self._events is None:
            self._events = []
        copied = {key: _frozen(value) for key, value in attributes.items()} if attributes else {}
        self._events.append((name, copied, timestamp if timestamp is not None else time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if self._ended("Adding link"):
            return
        self._add_link(context, attributes)

    def _add_link(self, context: SpanContext, attributes: Attributes) -> None:
        # As the SDK: a link to an invalid context is kept only when it carries attributes or a trace state.
        if not context or not (context.is_valid or attributes or context.trace_state):
            return
        if self._links is None:
            self._links = []
        self._links.append((pack_context(context), dict(attributes) if attributes else {}))

    def update_name(self, name: str) -> None:
        if not self._ended("Updating name"):
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended("Setting status"):
            return
        # As the SDK: once OK, the status stays; UNSET never replaces one.
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        event: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended("Calling end()"):
            return
        self._end = end_time if end_time is not None else time_ns()
        if not self._sampled:
            return
        tracer = self._tracer
        status = self._status
        packed: SpanTuple = (
            self._name,
            pack_context(self._context),
            pack_context(self._parent) if self._parent is not None else None,
            self._kind.value,
            self._start,
            self._end,
            self._attributes or None,
            self._events,
            self._links,
            (status.status_code.value, status.description),
            tracer.scope,
        )
        tracer.provider.recorder.submit_span(packed)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self.is_recording():
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        return f'RecordedSpan(name="{self._name}", context={self._context})'
