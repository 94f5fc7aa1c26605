"""The attempts of one request: its plan's targets called until one answers, with retries and backoff.

For each attempt, the target is the first in the plan's order (from just after the last one tried,
going round) that has attempts left (``retry.max_attempts`` of its own: every target of a virtual
model is tried at least once), is not cooling down (its circuit breaker), not out of this request (it
refused the gateway's credentials, or asked for a longer wait than ``retry.max_retry_after``) and can
start before the deadline; among those, the one that is ready soonest. A target that failed waits
before it is tried again: its backoff, or its ``Retry-After`` when that is longer. Moving to another
target does not wait. What is retried is decided in :mod:`relaygate.routing.retry`.

A rate limit (429) is the provider saying "later", not failing: it opens no circuit breaker. When no
attempt is left and every target tried was rate limited, the client gets the 429 of the target ready
soonest, its ``Retry-After`` counted from now (:meth:`Fallback._last_word`), so that its SDK waits just
that long; otherwise it gets the last failure.

An inbound dialect (``ctx.dialect``) is asked before each attempt whether the target speaks it
(:meth:`~relaygate.dialects.base.Exchange.attempt`): then the caller's own request goes upstream and its
answer comes back as the provider wrote it, the canonical answer recorded on the context all the same.

A whole answer is an attempt's from sending to the last byte read; a stream's ends at its first chunk:
until then nothing has reached the client, so another target can still answer. After that a failure
ends the stream with a final ``data: {"error": ...}`` event (see :mod:`relaygate.proxy`). The attempt
that answers is ``ctx.route``; all are in ``ctx.attempts`` and each has its own CLIENT span. A failed
attempt's error is scrubbed of the request's secrets (:mod:`relaygate.secrets`) before anything
records or relays it.

A request that brings the caller's own provider key (``ctx.caller_key``) sends it as the credential of
every attempt (:mod:`relaygate.routing.caller_keys`).

``retry.deadline`` bounds the attempts themselves, not only when one may start: an attempt still
running when it passes is cut off there (a stream only until its first chunk: after that the stream is
the client's), and the client gets a 504 ``deadline_exceeded``. A cut attempt is not counted as its
target failing, since the deadline may be a client's own, however short: it opens no breaker, but its
time counts against the target's latency and time to first token.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from relaygate.context import Attempt, RequestContext
from relaygate.errors import (
    DeadlineExceededError,
    GatewayError,
    ServiceUnavailableError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
)
from relaygate.providers.base import Endpoint, read_all
from relaygate.providers.errors import provider_failure
from relaygate.providers.streaming import relay_native
from relaygate.route_headers import ROUTE_HEADERS, route_headers
from relaygate.routing import ModelRouter, Plan, Target
from relaygate.routing.caller_keys import check_one_provider, provider_for
from relaygate.routing.retry import Verdict, backoff, retry_after, verdict
from relaygate.settings import RetrySettings
from relaygate.telemetry import AttemptSpan, Telemetry
from relaygate.upstream import UpstreamResponse

__all__ = ["ROUTE_HEADERS", "Fallback", "OpenStream", "route_headers"]

T = TypeVar("T")
Call = Callable[[Target, dict[str, Any], "_Span"], Awaitable[T]]

RETRY_AFTER_HEADERS = frozenset({b"retry-after", b"retry-after-ms"})


@dataclass(slots=True)
class OpenStream:
    """A stream whose first chunk is in: the proxy starts the response with it and relays the rest."""

    target: Target
    response: UpstreamResponse
    frames: AsyncGenerator[bytes, None]
    first: bytes
    started: float
    first_at: float


class Fallback:
    def __init__(
        self, router: ModelRouter, *, telemetry: Telemetry | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.router = router
        self.telemetry = telemetry
        self.clock = clock

    async def whole(
        self, ctx: RequestContext, plan: Plan, endpoint: Endpoint, body: dict[str, Any]
    ) -> tuple[Target, bytes]:
        """The OpenAI body of the first target that answers."""

        async def call(target: Target, sent: dict[str, Any], span: _Span) -> bytes:
            provider = provider_for(ctx, target)
            native = ctx.dialect.attempt(target) if ctx.dialect is not None else None
            with span.current():
                if native is None:
                    response = await provider.open(endpoint, sent, target.route.model, stream=False)
                else:
                    response = await provider.open_native(native)
            raw = await read_all(response)
            return provider.response_body(endpoint, raw, ctx) if native is None else native.answer(raw, ctx)

        target, answer = await self._run(ctx, plan, endpoint, body, call, stream=False)
        took = ctx.attempts[-1].duration
        self.router.metrics.record(target.key, failed=False, latency=took, ttft=took)
        return target, answer

    async def stream(self, ctx: RequestContext, plan: Plan, body: dict[str, Any], *, usage_chunk: bool) -> OpenStream:
        """The first target's stream to send its first chunk; the caller must :meth:`finish` it."""

        async def call(target: Target, sent: dict[str, Any], span: _Span) -> OpenStream:
            provider = provider_for(ctx, target)
            started = self.clock()
            response: UpstreamResponse | None = None
            frames: AsyncGenerator[bytes, None] | None = None
            try:
                try:
                    native = ctx.dialect.attempt(target) if ctx.dialect is not None else None
                    with anyio.fail_after(provider.first_chunk_timeout):
                        with span.current():
                            if native is None:
                                response = await provider.open("chat", sent, target.route.model, stream=True)
                            else:
                                response = await provider.open_native(native)
                        if native is None:
                            frames = provider.stream_frames(response, ctx, usage_chunk=usage_chunk)
                        else:
                            frames = relay_native(response, native.mapper(ctx))
                        first = await anext(frames, b"")
                except TimeoutError:
                    raise UpstreamTimeoutError(
                        f"upstream '{provider.name}' timed out: nothing streamed within "
                        f"{provider.first_chunk_timeout:g} s (timeouts.first_chunk)."
                    ) from None
                failure = provider_failure(first, provider.name) if ctx.error is not None else None
                if failure is not None:
                    # The stream's first event is the provider failing: nothing has reached the client yet.
                    raise failure
            except BaseException:
                # Shielded: when the deadline (or the client leaving) cancelled the attempt, an await in
                # the cleanup would be cancelled too, and the upstream connection left open.
                with anyio.CancelScope(shield=True):
                    if frames is not None:
                        await frames.aclose()
                    if response is not None:
                        await response.aclose()
                raise
            return OpenStream(target, response, frames, first, started, self.clock())

        _, opened = await self._run(ctx, plan, "chat", body, call, stream=True)
        return opened

    async def finish(self, ctx: RequestContext, opened: OpenStream) -> None:
        """Close the stream's upstream and count its latency (whole stream) and time to first chunk."""
        try:
            await opened.frames.aclose()
        finally:
            await opened.response.aclose()
        failed = ctx.error is not None and ctx.error != "client_disconnected"
        elapsed = self.clock() - opened.started
        self.router.metrics.record(
            opened.target.key,
            failed=failed,
            latency=None if failed else elapsed,
            ttft=opened.first_at - opened.started,
            elapsed=elapsed,
        )

    async def _run(
        self, ctx: RequestContext, plan: Plan, endpoint: Endpoint, body: dict[str, Any], call: Call[T], *, stream: bool
    ) -> tuple[Target, T]:
        if ctx.caller_key is not None:
            check_one_provider(plan)
        retry, breaker = plan.retry, self.router.breaker
        tries = _Tries(deadline=self.clock() + retry.deadline, per_target=retry.max_attempts)
        error: GatewayError | None = None
        position = 0
        while True:
            picked = self._pick(plan.targets, position, tries)
            if picked is None:
                break
            index, target, wait = picked
            if wait > 0:
                try:
                    await anyio.sleep(wait)
                except BaseException:
                    breaker.released(target.key)
                    raise
            tries.made[index] = tries.made.get(index, 0) + 1
            if ctx.attempts:
                ctx.attempts[-1].retried = True
            ctx.reset_response()
            ctx.route = target.route
            sent = target.body(body)
            span = self._span(ctx, target, endpoint, sent, stream=stream, number=len(ctx.attempts) + 1)
            attempt = Attempt(provider=target.route.provider.name, model=target.route.model)
            ctx.attempts.append(attempt)
            started = self.clock()
            try:
                with anyio.move_on_after(tries.deadline - started) as bounded:
                    result = await call(target, sent, span)
            except GatewayError as failure:
                # Provider text goes no further (codes into the ledger and spans, messages to the client)
                # before its secrets are out.
                ctx.scrub(failure)
                attempt.duration = self.clock() - started
                attempt.status, attempt.error = _outcome(failure)
                span.fail(ctx, attempt.error)
                if not self._may_retry(target, failure, retry, tries, attempt.duration):
                    raise failure from None
                error, position = failure, index + 1
                continue
            except BaseException:
                breaker.released(target.key)
                raise
            attempt.duration = self.clock() - started
            if bounded.cancelled_caught:
                raise self._cut(ctx, target, attempt, span, retry)
            attempt.status = 200
            breaker.succeeded(target.key)
            return target, result
        if error is None:
            raise self._nothing_tried(ctx, plan)
        raise self._last_word(ctx, plan, error, tries) from None

    def _last_word(self, ctx: RequestContext, plan: Plan, error: GatewayError, tries: _Tries) -> GatewayError:
        """The error the client gets once no attempt is left: the last one, or, when every target tried was
        rate limited, the 429 of the target ready soonest, its ``Retry-After`` counted from now, so that the
        client's SDK waits just that long before it retries."""
        if not tries.limited or set(tries.limited) != tries.failed:
            return error
        said = [(key, failure, at) for key, (failure, at) in tries.limited.items() if at is not None]
        if not said:
            return error  # no target said when: nothing better to tell than the last answer
        key, soonest, ready_at = min(said, key=lambda item: item[2])
        wait = max(0, math.ceil(ready_at - self.clock()))
        kept = [(name, value) for name, value in soonest.headers if name.lower() not in RETRY_AFTER_HEADERS]
        soonest.headers = [*kept, (b"retry-after", str(wait).encode())]
        ctx.route = next(target.route for target in plan.targets if target.key == key)
        return soonest

    def _cut(
        self, ctx: RequestContext, target: Target, attempt: Attempt, span: _Span, retry: RetrySettings
    ) -> DeadlineExceededError:
        """Account an attempt cut off at the deadline (see the module docstring); the client's error."""
        error = DeadlineExceededError(
            f"No answer within the deadline of {retry.deadline:g} s (retry.deadline): "
            f"the attempt on '{target.key}' was cut off after {attempt.duration:.2f} s."
        )
        attempt.error = error.code
        span.fail(ctx, DeadlineExceededError.code)
        self.router.breaker.released(target.key)
        self.router.metrics.record(target.key, failed=False, elapsed=attempt.duration)
        return error

    def _nothing_tried(self, ctx: RequestContext, plan: Plan) -> GatewayError:
        """Why no attempt could start: every target cooling down, or a deadline too short for any."""
        breaker = self.router.breaker
        cooling = [target for target in plan.targets if not breaker.available(target.key)]
        requested = plan.targets[0].route.requested
        if len(cooling) < len(plan.targets):
            return DeadlineExceededError(
                f"The deadline of {plan.retry.deadline:g} s (retry.deadline) left no time to call '{requested}'."
            )
        # The headers name the target back soonest: the one the Retry-After is about.
        soonest = min(cooling, key=lambda target: breaker.retry_after(target.key))
        ctx.route = soonest.route
        wait = breaker.retry_after(soonest.key)
        return ServiceUnavailableError(
            f"Every target of '{requested}' is failing and cooling down; retry in {wait} s.",
            headers=[(b"retry-after", str(wait).encode())],
        )

    def _may_retry(
        self, target: Target, failure: GatewayError, retry: RetrySettings, tries: _Tries, elapsed: float
    ) -> bool:
        """Account a failed attempt (``elapsed`` seconds long); whether another may follow (on this target
        or another)."""
        key, breaker = target.key, self.router.breaker
        judged = verdict(failure)
        if judged is Verdict.STOP:
            # The provider answered (or nothing was sent): either way it is not the target failing.
            if isinstance(failure, UpstreamError):
                breaker.succeeded(key)
            else:
                breaker.released(key)
            return False
        asked = retry_after(failure)
        now = self.clock()
        tries.failed.add(key)
        if failure.status == 429 and judged is Verdict.RETRY:
            # A rate limit is the provider saying "later", not failing: it opens no breaker (whose 503 would
            # read as a server error to SDKs), and it is remembered for the request's last word.
            breaker.released(key)
            tries.limited[key] = (failure, None if asked is None else now + asked)
        else:
            breaker.failed(key)
            tries.limited.pop(key, None)
        # Its time counts against the target's latency and ttft: a failure is no quick answer.
        self.router.metrics.record(key, failed=True, elapsed=elapsed)
        tries.failures[key] = tries.failures.get(key, 0) + 1
        if judged is Verdict.NEXT or (asked is not None and asked > retry.max_retry_after):
            tries.out.add(key)
        else:
            wait = max(backoff(retry, tries.failures[key], self.router.rng), asked or 0.0)
            tries.ready_at[key] = now + wait
        return True

    def _pick(self, targets: tuple[Target, ...], position: int, tries: _Tries) -> tuple[int, Target, float] | None:
        """The next target, its index and how long to wait for it (see the module docstring); claimed
        on its breaker."""
        now = self.clock()
        best: tuple[int, Target, float] | None = None
        for index in _round(len(targets), position):
            target = targets[index]
            if tries.made.get(index, 0) >= tries.per_target:
                continue
            if target.key in tries.out or not self.router.breaker.available(target.key):
                continue
            wait = max(0.0, tries.ready_at.get(target.key, 0.0) - now)
            if now + wait >= tries.deadline:
                continue
            if best is None or wait < best[2]:
                best = (index, target, wait)
            if wait == 0:
                break
        if best is not None:
            self.router.breaker.acquire(best[1].key)
        return best

    def _span(
        self,
        ctx: RequestContext,
        target: Target,
        endpoint: Endpoint,
        body: dict[str, Any],
        *,
        stream: bool,
        number: int,
    ) -> _Span:
        if self.telemetry is None:
            return _NO_SPAN
        return self.telemetry.attempt(ctx, target.route, endpoint, body, stream=stream, number=number)


@dataclass(slots=True)
class _Tries:
    """One request's record of its targets: the attempts made on each (by its place in the plan: a model
    listed twice is two targets), when each may be tried again, how often each failed, which are out of
    the request, which were rate limited last time (and until when), and the deadline."""

    deadline: float
    per_target: int
    made: dict[int, int] = field(default_factory=dict)
    ready_at: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    out: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    limited: dict[str, tuple[GatewayError, float | None]] = field(default_factory=dict)


class _NoSpan:
    def current(self) -> AbstractContextManager[None]:
        return nullcontext()

    def fail(self, ctx: RequestContext, error_type: str) -> None:
        return None


_Span = AttemptSpan | _NoSpan
_NO_SPAN = _NoSpan()


def _round(count: int, start: int) -> Iterator[int]:
    for step in range(count):
        yield (start + step) % count


def _outcome(error: GatewayError) -> tuple[int | None, str]:
    code = error.code or error.type
    if isinstance(error, UpstreamTimeoutError | UpstreamConnectionError):
        return None, code
    return error.status, code
