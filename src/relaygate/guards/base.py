"""What every guard type shares: its identity, its parameters and the two ways it judges text.

Every guard judges a list of texts at once (:meth:`Guard.judge`): the messages of a request, or the
answer of each choice. Guards that can judge text as it grows (regex, pii, word_count) also make a
:class:`TextStage` per streamed choice, which sees the text chunk by chunk, may hold back (at most
``hold_chars``) what could still become a match, and raises :class:`Finding` when it must stop the
stream, or :class:`GuardFailure` when it cannot judge within that bound.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from relaygate.context import RequestContext, Route, Usage
from relaygate.guards.results import Verdict

if TYPE_CHECKING:
    from relaygate.routing import ModelRouter
    from relaygate.telemetry import Telemetry

__all__ = [
    "Finding",
    "Guard",
    "GuardEnv",
    "GuardFailure",
    "GuardModelCall",
    "GuardSpec",
    "Parameters",
    "TextStage",
]

Stage = Literal["input", "output"]
Action = Literal["block", "redact", "observe"]


class Parameters(BaseModel):
    """Base of each guard type's parameters: unknown keys are refused, like everywhere in the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ParametersT = TypeVar("ParametersT", bound=Parameters)


@dataclass(frozen=True, slots=True)
class GuardSpec:
    id: str
    type: str
    stage: Stage
    action: Action
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GuardEnv:
    """What guards that call models use: relaygate's own router (in-process) and its telemetry."""

    router: ModelRouter | None = None
    telemetry: Telemetry | None = None


@dataclass(frozen=True, slots=True)
class GuardModelCall:
    """The model call a guard may make for a request, at its largest: so that budgets can hold its cost.

    ``body`` is the chat request it sends with the judged text left out; ``text_bytes`` bounds the UTF-8
    bytes of that text; ``calls`` is how many such calls it may make (a long text is judged in windows).
    """

    route: Route
    body: dict[str, Any]
    text_bytes: int
    calls: int = 1


class Finding(Exception):
    """A stream stage found what its guard refuses; the stream stops there."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GuardFailure(Exception):
    """The guard could not judge. ``upstream`` when a model or endpoint it called failed (a 502)."""

    def __init__(
        self,
        message: str,
        *,
        upstream: bool = False,
        provider: str | None = None,
        model: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.upstream = upstream
        self.provider = provider
        self.model = model
        self.usage = usage


class TextStage(ABC):
    """One guard's view of one streamed choice."""

    redactions: int = 0

    @abstractmethod
    def feed(self, text: str, final: bool) -> str:
        """The text that may go on, given the next ``text``; ``final`` at the choice's end."""


class Guard(ABC):
    type: ClassVar[str]
    calls_model: ClassVar[bool] = False

    def __init__(self, spec: GuardSpec, env: GuardEnv) -> None:
        """Raises ``ValueError`` naming the parameter when the parameters do not fit the type."""
        self.id = spec.id
        self.stage: Stage = spec.stage
        self.action: Action = spec.action
        self.env = env

    @property
    def incremental(self) -> bool:
        """Whether :meth:`text_stage` can judge a streamed answer as it grows."""
        return False

    def text_stage(self, hold_chars: int) -> TextStage:
        raise NotImplementedError(f"guards of type {self.type} judge whole texts only")

    @abstractmethod
    async def judge(self, texts: Sequence[str], ctx: RequestContext) -> Verdict:
        """Judge ``texts``; raises :class:`GuardFailure` when it cannot."""

    def model_call(self) -> GuardModelCall | None:
        """The priced model call :meth:`judge` may make, once per request; ``None`` when it makes none."""
        return None


def parse_parameters(model: type[ParametersT], parameters: Mapping[str, Any]) -> ParametersT:
    """The parameters as ``model``; a ``ValueError`` saying which one is wrong otherwise."""
    try:
        return model.model_validate(dict(parameters))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = "unknown parameter" if error["type"] == "extra_forbidden" else error["msg"]
            message = message.removeprefix("Value error, ")
            problems.append(f"parameters.{where}: {message}" if where else message)
        raise ValueError("; ".join(problems)) from None


def join_texts(texts: Sequence[str]) -> str:
    """Texts as one, for guards that judge a whole conversation or answer."""
    return "\n\n".join(text for text in texts if text)
