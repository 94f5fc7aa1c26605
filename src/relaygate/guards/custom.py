"""``custom``: a Python callable named in the config judges the text.

``parameters: {callable: "package.module:function", ...}``; the other parameters are handed to it.
The callable takes one :class:`GuardInput` and returns ``True`` or ``None`` (passes), ``False``
(fails), a string (fails, and says why; the caller sees it) or a :class:`~relaygate.guards.Verdict`.
It may be ``async``; a plain function runs on the event loop, so it must be quick. If it raises, the
guard has failed to judge: the call is refused with a ``guard_error`` (or only recorded when the
guard observes), and the exception is logged.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field

from relaygate.context import RequestContext
from relaygate.guards.base import Guard, GuardEnv, GuardFailure, GuardSpec, Parameters, join_texts, parse_parameters
from relaygate.guards.results import Verdict

__all__ = ["CustomGuard", "GuardInput"]

logger = logging.getLogger("relaygate.guards")


@dataclass(frozen=True, slots=True)
class GuardInput:
    """What a custom guard's callable is given."""

    texts: Sequence[str]
    stage: str
    guard_id: str
    project_id: str | None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """All texts as one, separated by blank lines."""
        return join_texts(self.texts)


class CustomParameters(Parameters):
    model_config = ConfigDict(extra="allow", frozen=True)

    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class CustomGuard(Guard):
    type = "custom"
    # It may call anything; run it alongside the other slow guards.
    calls_model = True

    def __init__(self, spec: GuardSpec, env: GuardEnv) -> None:
        super().__init__(spec, env)
        parameters = parse_parameters(CustomParameters, spec.parameters)
        self.name = parameters.callable
        self.function = _load(parameters.callable)
        self.parameters = {key: value for key, value in spec.parameters.items() if key != "callable"}

    async def judge(self, texts: Sequence[str], ctx: RequestContext) -> Verdict:
        subject = GuardInput(list(texts), self.stage, self.id, ctx.project_id, self.parameters)
        try:
            result = self.function(subject)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            logger.exception("custom guard %r (%s) raised", self.id, self.name)
            raise GuardFailure(f"its callable raised {type(exc).__name__}") from exc
        if result is None or result is True:
            return Verdict(True)
        if result is False:
            return Verdict(False, "refused by its check")
        if isinstance(result, str):
            return Verdict(False, result)
        if isinstance(result, Verdict):
            return Verdict(result.passed, result.reason)
        raise GuardFailure(f"its callable returned a value of type {type(result).__name__}, not a verdict")


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"parameters.callable: cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        value = getattr(value, part, None)
        if value is None:
            raise ValueError(f"parameters.callable: {module_name!r} has no {attribute!r}")
    if not callable(value):
        raise ValueError(f"parameters.callable: {target!r} is not callable")
    return value
