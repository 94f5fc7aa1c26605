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


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    # Prompt tokens written to a provider's cache (Anthropic bills them above plain input).
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # Image tokens among the prompt (an image to edit) and the output (generated images), where the provider
    # tells them apart: gpt-image-1 and Gemini bill them at rates of their own.
    input_image_tokens: int = 0
    output_image_tokens: int = 0

    def plus(self, other: Usage | None) -> Usage:
        """This usage and ``other`` summed."""
        if other is None:
            return Usage(**{name: getattr(self, name) for name in self.__slots__})
        return Usage(**{name: getattr(self, name) + getattr(other, name) for name in self.__slots__})

    @classmethod
    def checked(cls, usage: dict[str, Any]) -> Usage | None:
        """:meth:`from_openai`, or ``None`` (usage unknown) when a figure is not a count: negative, fractional,
        not a number or beyond ten billion. Such figures would poison the ledger and the budgets; the call settles
        as one whose provider reported no usage."""
        figures = (usage, *(_details(usage, *names) for names in DETAILS))
        if not all(sane_count(value) for each in figures for key, value in each.items() if key in COUNTS):
            return None
        return cls.from_openai(usage)

    @classmethod
    def from_openai(cls, usage: dict[str, Any]) -> Usage:
        """Chat Completions' usage, or the Images API's (``input_tokens``, ``output_tokens`` and their details)."""
        prompt = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        completion = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
        prompt_details = _details(usage, "prompt_tokens_details", "input_tokens_details")
        completion_details = _details(usage, "completion_tokens_details", "output_tokens_details")
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=int(usage.get("total_tokens") or prompt + completion),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
            cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
            input_image_tokens=_count(prompt_details.get("image_tokens")),
            output_image_tokens=_count(completion_details.get("image_tokens")),
        )


# The figures of a usage object that are token counts; the largest a ledger or a budget takes as one.
COUNTS = frozenset(
    {
        "prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens",
        "cache_creation_input_tokens", "cached_tokens", "reasoning_tokens", "image_tokens", "text_tokens",
        "audio_tokens",
    }
)  # fmt: skip
# Ten billion tokens in one call: far beyond any model's window, and small enough that its cost in nano-dollars at
# any real price (up to $100,000 per 1M tokens) stays within a 64-bit integer column.
MAX_COUNT = 10**10
DETAILS = (("prompt_tokens_details", "input_tokens_details"), ("completion_tokens_details", "output_tokens_details"))


def sane_count(value: Any) -> bool:
    """A token count: a whole number from 0 to MAX_COUNT (``10.0`` is one), or absent (``None``)."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value <= MAX_COUNT and (isinstance(value, int) or value.is_integer())


def _details(usage: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        details = usage.get(name)
        if isinstance(details, dict):
            return details
    return {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


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
