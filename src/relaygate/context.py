"""The per-request context: one typed object at ``scope["relaygate"]``.

Middlewares and the proxy write what they learn here (ids, project, key, parsed request, route, usage)
instead of keeping per-request state on themselves or scattering scope keys. Later layers (tracing,
the ledger, limits, guards) read it, and may subscribe to what the proxy sees of the response through
:class:`ResponseObserver`, so nobody parses the upstream bytes twice. Output guards of a stream sit in
``output_filter`` (:class:`OutputFilter`): the stream mapper hands it each parsed chunk before the
chunk's frame goes out; without one, the stream path does nothing more than check that it is absent.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import Scope

from relaygate.secrets import NO_SECRETS, Secrets
from relaygate.usage import Usage, sane_count

if TYPE_CHECKING:
    from relaygate.dialects.base import Exchange
    from relaygate.errors import GatewayError
    from relaygate.guards.results import GuardResult
    from relaygate.keys import ApiKey
    from relaygate.providers.base import Provider

__all__ = [
    "SCOPE_KEY",
    "Attempt",
    "CallerKey",
    "OutputFilter",
    "RequestContext",
    "ResponseObserver",
    "Route",
    "StreamStopped",
    "Usage",
    "get_context",
    "sane_count",
    "ModelCatalog",
]

SCOPE_KEY = "relaygate"
logger = logging.getLogger("relaygate")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes: the provider and the model name it knows."""

    provider: Provider
    model: str
    requested: str


@dataclass(slots=True)
class Attempt:
    """One call to a provider made for the request (a request routed with fallbacks may make several)."""

    provider: str
    model: str
    # The provider's answer: 200 for the attempt that answered, the (mapped) error status of one that
    # failed, None when no answer came (timeout, connection failure).
    status: int | None = None
    # The error code (or type) of a failed attempt.
    error: str | None = None
    # Seconds until the attempt answered (a stream: its first chunk) or failed.
    duration: float = 0.0
    # Whether another attempt followed this one.
    retried: bool = False
    # What a tool loop's model call cost and used (the ledger records each of a loop's calls).
    cost_usd: float | None = None
    usage: Usage | None = None


class CallerKey:
    """A caller's own provider key, for one request (``LB-LLM-Key``; see :mod:`relaygate.middleware.byok`).

    It goes upstream as the provider's credential and nowhere else: it is one of the request's secrets
    (scrubbed from errors, spans and logs), and its ``repr`` shows only the :attr:`fingerprint` (the first
    8 hex digits of its SHA-256), which is what the ledger records of it.
    """

    __slots__ = ("fingerprint", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self.fingerprint = hashlib.sha256(value.encode()).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"CallerKey(fingerprint={self.fingerprint!r})"


class ModelCatalog(Protocol):
    """What the proxy learns of models beyond the providers' own: models an admin registered and prices."""

    def resolve(self, project_id: str | None, model: str) -> str | None:
        """The ``provider/model`` a registered name stands for, or ``None`` when it is no such name."""
        ...

    def registered(self, project_id: str | None) -> list[dict[str, Any]]:
        """Entries of ``GET /v1/models`` for the models registered for the project (or for all)."""
        ...

    def pricing(self, provider: Provider, model: str, project_id: str | None) -> dict[str, Any] | None:
        """The price of a provider's model as ``GET /v1/models`` shows it, or ``None``."""
        ...


class ResponseObserver(Protocol):
    """Sees what the proxy sees of a response, parsed once."""

    def on_response(self, ctx: RequestContext, body: dict[str, Any]) -> None: ...

    def on_chunk(self, ctx: RequestContext, chunk: dict[str, Any]) -> None: ...

    def on_end(self, ctx: RequestContext) -> None: ...


class OutputFilter(Protocol):
    """Sees each OpenAI chunk of a stream before it is recorded and sent, and may hold or replace it."""

    def on_chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]] | None:
        """``None`` to send the chunk as it came; else the chunks to send instead (none: hold it back).

        Raises :class:`StreamStopped` to end the stream there.
        """
        ...

    def close(self) -> list[dict[str, Any]]:
        """Chunks still held back when the stream ends without finishing its choices; may raise
        :class:`StreamStopped` too."""
        ...


class StreamStopped(Exception):
    """An output filter ends the stream: ``chunk`` (``finish_reason: "content_filter"``) goes out last,
    then ``error`` as the final error event."""

    def __init__(self, chunk: dict[str, Any], error: GatewayError) -> None:
        super().__init__(error.message)
        self.chunk = chunk
        self.error = error


@dataclass(slots=True)
class RequestContext:
    trace_id: str = ""
    run_id: str | None = None
    thread_id: str | None = None
    label: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    project_id: str | None = None
    key: ApiKey | None = None
    is_admin: bool = False
    endpoint: str | None = None
    body: dict[str, Any] | None = None
    request: Any = None
    # The provider model the request went to: the target that answered, or the last one tried.
    route: Route | None = None
    # Every call to a provider, in order (see Attempt); the last one is the route's.
    attempts: list[Attempt] = field(default_factory=list)
    user: dict[str, Any] | None = None
    response_id: str | None = None
    response_model: str | None = None
    usage: Usage | None = None
    # Set by the ledger once the call is priced.
    cost_usd: float | None = None
    finish_reasons: list[str] = field(default_factory=list)
    status: int | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.perf_counter)
    # The same instant on the wall clock (seconds since the epoch): the ledger's start of the call.
    started_wall: float = field(default_factory=time.time)
    first_chunk_at: float | None = None
    ended_at: float | None = None
    observers: list[ResponseObserver] = field(default_factory=list)
    # One result per guard run, in the order they ran (relaygate.guards).
    guard_results: list[GuardResult] = field(default_factory=list)
    output_filter: OutputFilter | None = None
    # Set by output guards when the client did not get the answer as the provider gave it: the first
    # choice's text as they redacted it (a stream's chunks are redacted before they are recorded), or
    # the refusal that replaced the answer. The ledger keeps what the client got in the thread.
    answer_redacted: str | None = None
    answer_refusal: str | None = None
    # The inbound dialect's side of a request that came in another API than Chat Completions (the
    # Responses API, Anthropic's Messages, ...): see relaygate.dialects. ``None`` for a chat call.
    dialect: Exchange | None = None
    # Set by a layer that must see or change the call in its canonical form: a redacting input guard, output
    # guards. A dialect's native pass-through (the caller's own body sent upstream) is then off for the request.
    canonical_only: bool = False
    # What is scrubbed from the provider text this request relays, its spans and its log lines: the
    # gateway's secrets (set by the Gateway), and those the request adds (add_secret). See relaygate.secrets.
    secrets: Secrets = NO_SECRETS
    # Set by the limits when the provider billed beyond the call's reservation (usage above max_tokens).
    overbilled: bool = False
    # The caller's own provider key for this request (LB-LLM-Key), used instead of the configured one.
    caller_key: CallerKey | None = None
    # The models a script router chose for this request, in order (relaygate.routing.scripted); set once,
    # before the limits reserve and the proxy routes, so that both see the same choice.
    router_choice: tuple[str, ...] | None = None
    # Or why the script router gave none (a 400): raised again rather than running the script twice.
    router_refusal: Exception | None = None
    # A tool loop's model calls before the current one (relaygate.mcp.loop): their usage summed; ``usage``
    # stays the current call's, and the ledger records the sum of both (Usage.plus).
    loop_usage: Usage | None = None
    # The messages a tool loop added to the conversation (assistant tool calls, tool results), in order: the
    # thread keeps them between the request's turn and the answer.
    loop_messages: list[dict[str, Any]] = field(default_factory=list)
    # The limits' reservation of the current model call (relaygate.limits), settled when the call ends; a tool
    # loop settles each of its model calls and reserves the next.
    admission: Any = None
    # A refusal of the request's headers found before the caller was authenticated (an over-long X-Label,
    # projects that differ): AuthMiddleware sends it once the key is checked, so that a caller without a
    # key learns nothing but that it needs one.
    refusal: GatewayError | None = None

    def next_model_call(self) -> None:
        """A tool loop's model call is over and another follows: the observers close what they follow of it
        (an attempt's span ends, the ledger banks its cost), its usage joins ``loop_usage``, and what it
        recorded of its answer is forgotten."""
        for observer in [*self.observers, self.output_filter]:
            done = getattr(observer, "on_model_call_done", None)
            if done is not None:
                done(self)
        if self.usage is not None:
            self.loop_usage = self.usage.plus(self.loop_usage)
        first_chunk_at = self.first_chunk_at
        self.reset_response()
        self.first_chunk_at = first_chunk_at

    @property
    def total_usage(self) -> Usage | None:
        """The request's usage: with a tool loop, every model call's summed."""
        if self.loop_usage is None:
            return self.usage
        return self.loop_usage.plus(self.usage)

    def add_secret(self, *values: str) -> None:
        """Secrets of this request alone (a caller's own provider key): scrubbed from its errors, spans and
        log lines like the gateway's."""
        self.secrets = self.secrets.extended(values)

    def scrub(self, error: GatewayError) -> GatewayError:
        """``error`` without any secret of this request (in place; error paths only)."""
        return self.secrets.scrub_error(error)

    def record_response(self, body: dict[str, Any]) -> bool:
        """Note a whole answer and tell the observers; ``True`` when ``body`` was changed (its usage priced)."""
        self.response_id = body.get("id")
        self.response_model = body.get("model")
        self._note_usage_and_finish(body)
        for observer in self.observers:
            observer.on_response(self, body)
        return self._add_cost(body)

    def record_chunk(self, chunk: dict[str, Any]) -> bool:
        """Note a stream chunk and tell the observers; ``True`` when ``chunk`` was changed (its usage priced)."""
        if self.first_chunk_at is None:
            self.first_chunk_at = time.perf_counter()
            self.response_id = chunk.get("id")
            self.response_model = chunk.get("model")
        self._note_usage_and_finish(chunk)
        for observer in self.observers:
            observer.on_chunk(self, chunk)
        return self._add_cost(chunk) if "usage" in chunk else False

    def record_end(self, status: int, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.ended_at = time.perf_counter()
        for observer in self.observers:
            observer.on_end(self)

    def _add_cost(self, data: dict[str, Any]) -> bool:
        # The caller sees what the call cost in the usage object (as LangDB's usage chunk has it), once an
        # observer (the ledger) has priced it; adapters send the object as changed here.
        usage = data.get("usage")
        if self.cost_usd is None or not isinstance(usage, dict):
            return False
        usage["cost"] = self.cost_usd
        return True

    def reset_response(self) -> None:
        """Forget what a failed attempt recorded of its answer before the next attempt starts."""
        self.response_id = None
        self.response_model = None
        self.usage = None
        self.finish_reasons = []
        self.first_chunk_at = None
        self.error = None

    def _note_usage_and_finish(self, data: dict[str, Any]) -> None:
        usage = data.get("usage")
        if usage and isinstance(usage, dict):
            self.usage = Usage.checked(usage)
            if self.usage is None and self.route is not None:
                warnings = self.route.provider.warnings
                if "usage" not in warnings:  # once per provider: a broken provider says it on every call
                    warnings.add("usage")
                    logger.warning(
                        "upstream '%s' reported token usage out of range (%s); such calls are settled as if it "
                        "had reported none", self.route.provider.name, _clip(usage),
                    )  # fmt: skip
        for choice in data.get("choices") or ():
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reasons.append(reason)


def _clip(usage: dict[str, Any]) -> str:
    text = repr(usage)
    return text if len(text) <= 300 else text[:300] + "…"


def get_context(scope: Scope) -> RequestContext:
    """The request's context, created by whichever layer asks first."""
    ctx: RequestContext | None = scope.get(SCOPE_KEY)
    if ctx is None:
        ctx = scope[SCOPE_KEY] = RequestContext()
    return ctx
