"""The configured guards: which ones a request gets, and running them over texts.

A request gets its project's default guards (``projects[].guards``) and those it names in
``extra.guards`` (ids, or ``{"id", "parameters"}`` overriding the configured parameters for this
request). An unknown id is a 400 naming it. A project's default guards cannot be re-parameterised by
a request, and a custom guard's callable never can be: both would let a caller switch a policy off.

Over a list of texts, redacting guards run first, in their order, so that every later guard (and the
provider) sees the redacted text. Then quick guards run one after the other and stop at the first
refusal; guards that call a model or a callable run concurrently, after the quick ones have passed.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from relaygate.context import RequestContext
from relaygate.errors import GatewayError, GuardError, GuardViolationError, InvalidRequestError
from relaygate.guards.base import Guard, GuardEnv, GuardFailure, GuardModelCall, GuardSpec
from relaygate.guards.custom import CustomGuard
from relaygate.guards.json_schema import JsonSchemaGuard
from relaygate.guards.judge import JudgeGuard
from relaygate.guards.moderation import ModerationGuard
from relaygate.guards.pii import PiiGuard
from relaygate.guards.regex_guard import RegexGuard
from relaygate.guards.results import GuardResult, Verdict
from relaygate.guards.word_count import WordCountGuard
from relaygate.settings import ConfigError, GuardOptions, GuardSettings, Settings

if TYPE_CHECKING:
    from relaygate.routing import ModelRouter
    from relaygate.telemetry import Telemetry

__all__ = ["GUARD_TYPES", "Guards", "Selection"]

logger = logging.getLogger("relaygate.guards")

GUARD_TYPES: dict[str, type[Guard]] = {
    guard.type: guard
    for guard in (WordCountGuard, RegexGuard, PiiGuard, JsonSchemaGuard, ModerationGuard, JudgeGuard, CustomGuard)
}
# Guards built with a request's own parameters, kept for the next request that names the same.
OVERRIDE_CACHE_SIZE = 256
PARAM = "extra.guards"


@dataclass(frozen=True, slots=True)
class Selection:
    """The guards of one request, by stage, in the order they run."""

    input: tuple[Guard, ...] = ()
    output: tuple[Guard, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.input or self.output)


NOTHING = Selection()


class Guards:
    """Guards by id, built and checked once; :meth:`select` and :meth:`run` serve each request."""

    def __init__(
        self,
        guards: Mapping[str, GuardSettings],
        *,
        projects: Mapping[str, Sequence[str]] | None = None,
        options: GuardOptions | None = None,
        router: ModelRouter | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.options = options if options is not None else GuardOptions()
        self.env = GuardEnv(router=router, telemetry=telemetry)
        self.specs = {
            guard_id: GuardSpec(guard_id, guard.type, guard.stage, guard.action, guard.parameters)
            for guard_id, guard in guards.items()
        }
        problems: list[str] = []
        self.guards: dict[str, Guard] = {}
        for guard_id, spec in self.specs.items():
            try:
                self.guards[guard_id] = GUARD_TYPES[spec.type](spec, self.env)
            except ValueError as exc:
                problems.append(f"guards.{guard_id}: {exc}")
        for project, ids in (projects or {}).items():
            unknown = [guard_id for guard_id in ids if guard_id not in self.specs]
            if unknown:
                problems.append(f"project {project!r} names guards that are not defined: {', '.join(unknown)}")
        if problems:
            raise ConfigError("\n".join(problems))
        self.defaults = {project: tuple(ids) for project, ids in (projects or {}).items() if ids}
        self._default_selections = {
            project: _split([self.guards[guard_id] for guard_id in ids]) for project, ids in self.defaults.items()
        }
        self._overrides: OrderedDict[tuple[str, bytes], Guard] = OrderedDict()
        # The model calls of each project's own guards by endpoint (model_calls); projects and endpoints are few.
        self._default_calls: dict[tuple[str, str], tuple[tuple[str, GuardModelCall], ...]] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, *, router: ModelRouter | None = None, telemetry: Telemetry | None = None
    ) -> Guards:
        return cls(
            settings.guards,
            projects={project.id: project.guards for project in settings.projects},
            options=settings.guard_options,
            router=router,
            telemetry=telemetry,
        )

    def select(self, project_id: str | None, requested: Any) -> Selection:
        """The guards of a request of ``project_id`` whose ``extra.guards`` is ``requested``."""
        if not requested:
            return self._default_selections.get(project_id or "", NOTHING)
        items = _parse_requested(requested)
        unknown = [guard_id for guard_id, _ in items if guard_id not in self.guards]
        if unknown:
            names = ", ".join(f"'{guard_id}'" for guard_id in dict.fromkeys(unknown))
            raise InvalidRequestError(
                f"Unknown guard{'s' if len(set(unknown)) > 1 else ''} in extra.guards: {names}.",
                param=PARAM,
                code="guard_not_found",
            )
        defaults = self.defaults.get(project_id or "", ())
        chosen = {guard_id: self.guards[guard_id] for guard_id in defaults}
        for guard_id, parameters in items:
            if parameters:
                if guard_id in defaults:
                    raise InvalidRequestError(
                        f"Guard '{guard_id}' is applied to every call of the project; "
                        "a request cannot change its parameters.",
                        param=PARAM,
                        code="invalid_value",
                    )
                chosen[guard_id] = self._with_parameters(guard_id, parameters)
            else:
                chosen.setdefault(guard_id, self.guards[guard_id])
        return _split(list(chosen.values()))

    def model_calls(
        self, project_id: str | None, requested: Any, endpoint: str
    ) -> Sequence[tuple[str, GuardModelCall]]:
        """The priced model calls (guard id, call) the guards of a request to ``endpoint`` may make: a judge
        runs once per request, on its input or on its answer (only chat answers are judged)."""
        if requested:
            return self._model_calls(self.select(project_id, requested), endpoint)
        # A project's own guards make the same calls on every request to an endpoint: worked out once.
        key = (project_id or "", endpoint)
        calls = self._default_calls.get(key)
        if calls is None:
            calls = self._default_calls[key] = self._model_calls(self.select(project_id, None), endpoint)
        return calls

    @staticmethod
    def _model_calls(selection: Selection, endpoint: str) -> tuple[tuple[str, GuardModelCall], ...]:
        guards = (*selection.input, *selection.output) if endpoint == "chat" else selection.input
        return tuple((guard.id, call) for guard in guards if (call := guard.model_call()) is not None)

    def _with_parameters(self, guard_id: str, parameters: dict[str, Any]) -> Guard:
        spec = self.specs[guard_id]
        if spec.type == "custom" and "callable" in parameters:
            raise InvalidRequestError(
                f"The callable of guard '{guard_id}' cannot be set by a request.", param=PARAM, code="invalid_value"
            )
        key = (guard_id, orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS))
        guard = self._overrides.get(key)
        if guard is not None:
            self._overrides.move_to_end(key)
            return guard
        merged = GuardSpec(guard_id, spec.type, spec.stage, spec.action, {**spec.parameters, **parameters})
        try:
            guard = GUARD_TYPES[spec.type](merged, self.env)
        except ValueError as exc:
            raise InvalidRequestError(
                f"Invalid parameters for guard '{guard_id}' in extra.guards: {exc}.", param=PARAM, code="invalid_value"
            ) from None
        self._overrides[key] = guard
        if len(self._overrides) > OVERRIDE_CACHE_SIZE:
            self._overrides.popitem(last=False)
        return guard

    async def run(
        self,
        guards: Sequence[Guard],
        texts: list[str],
        ctx: RequestContext,
        *,
        on_redact: Callable[[Verdict], None] | None = None,
    ) -> list[str]:
        """Runs ``guards`` over ``texts`` and records their results on ``ctx``.

        Returns the texts, redacted where a guard redacts (each redacting verdict also goes to
        ``on_redact``, as it comes); raises the error that refuses the call.
        """
        subject = "request" if guards and guards[0].stage == "input" else "answer"
        for guard in guards:
            if guard.action == "redact":
                result, verdict = await self.judge_one(guard, texts, ctx)
                self.settle([result], subject)
                if verdict is not None and verdict.texts is not None:
                    texts = verdict.texts
                    if on_redact is not None:
                        on_redact(verdict)
        others = [guard for guard in guards if guard.action != "redact"]
        results: list[GuardResult] = []
        for guard in others:
            if not guard.calls_model:
                result, _ = await self.judge_one(guard, texts, ctx)
                results.append(result)
                if result.refused:
                    self.settle(results, subject)
        slow = [guard for guard in others if guard.calls_model]
        if len(slow) == 1:
            results.append((await self.judge_one(slow[0], texts, ctx))[0])
        elif slow:
            done: list[GuardResult | None] = [None] * len(slow)

            async def judge(index: int) -> None:
                done[index] = (await self.judge_one(slow[index], texts, ctx))[0]

            async with anyio.create_task_group() as group:
                for index in range(len(slow)):
                    group.start_soon(judge, index)
            results.extend(result for result in done if result is not None)
        self.settle(results, subject)
        return texts

    async def judge_one(
        self, guard: Guard, texts: Sequence[str], ctx: RequestContext
    ) -> tuple[GuardResult, Verdict | None]:
        """One guard's result over ``texts``; a guard that fails to judge gives a result with ``error``."""
        started = time.perf_counter()
        verdict: Verdict | None = None
        try:
            verdict = await guard.judge(texts, ctx)
            result = self.result(guard, verdict)
        except GuardFailure as failure:
            result = self.result(guard, None, failure)
        except Exception:
            logger.exception("guard %r failed", guard.id)
            result = self.result(guard, None, GuardFailure("it failed unexpectedly"))
        result.duration_s = time.perf_counter() - started
        ctx.guard_results.append(result)
        return result, verdict

    @staticmethod
    def result(guard: Guard, verdict: Verdict | None, failure: GuardFailure | None = None) -> GuardResult:
        if failure is not None:
            return GuardResult(
                guard.id, guard.type, guard.stage, guard.action, False, error=failure.message,
                provider=failure.provider, model=failure.model, usage=failure.usage,
                error_upstream=failure.upstream,
            )  # fmt: skip
        assert verdict is not None
        return GuardResult(
            guard.id, guard.type, guard.stage, guard.action, verdict.passed, reason=verdict.reason,
            redactions=verdict.redactions, provider=verdict.provider, model=verdict.model, usage=verdict.usage,
        )  # fmt: skip

    def settle(self, results: Sequence[GuardResult], subject: str) -> None:
        """Raises the error of the first result that refuses the call, if any."""
        for result in results:
            if result.refused:
                raise self.error(result, subject)

    def error(self, result: GuardResult, subject: str) -> GatewayError:
        if result.error is not None:
            return GuardError(
                f"Guard '{result.id}' could not judge the {subject}: {result.error}.",
                status=502 if result.error_upstream else 500,
            )
        return GuardViolationError(
            f"Guard '{result.id}' blocked the {subject}: {result.reason or 'it did not pass'}.",
            status=self.options.violation_status,
        )


def _split(guards: list[Guard]) -> Selection:
    return Selection(
        input=tuple(guard for guard in guards if guard.stage == "input"),
        output=tuple(guard for guard in guards if guard.stage == "output"),
    )


def _parse_requested(requested: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(requested, list):
        raise InvalidRequestError("extra.guards must be a list of guard ids.", param=PARAM, code="invalid_value")
    items: list[tuple[str, dict[str, Any]]] = []
    for item in requested:
        if isinstance(item, str):
            items.append((item, {}))
            continue
        if isinstance(item, dict) and isinstance(item.get("id"), str) and set(item) <= {"id", "parameters"}:
            parameters = item.get("parameters") or {}
            if isinstance(parameters, dict):
                items.append((item["id"], parameters))
                continue
        raise InvalidRequestError(
            'Each entry of extra.guards is a guard id or {"id": ..., "parameters": {...}}.',
            param=PARAM,
            code="invalid_value",
        )
    return items
