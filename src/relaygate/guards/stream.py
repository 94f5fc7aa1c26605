"""Output guards on a streamed answer: the request's ``ctx.output_filter``.

Guards that judge text as it grows (regex, pii, word_count) run chunk by chunk as a chain of
:class:`~relaygate.guards.base.TextStage` per choice, redacting ones first: each stage passes on
what it may, holding back what could still become a match (at most ``guard_options.stream_hold_chars``
characters). A finding of a blocking stage stops the stream there
(:class:`~relaygate.context.StreamStopped`): a last chunk with ``finish_reason: "content_filter"``, then
the error event; so does a stage that cannot judge within its bound, with a ``guard_error``.

Guards that need the whole answer (json_schema, llm_judge, moderation, custom, regex with required
patterns) and observing guards judge the answer's text when the stream is over
(:meth:`StreamGuards.finish`). When one of them blocks, the whole stream is held until then
(``holds``: see :class:`~relaygate.middleware.guards.GuardsMiddleware`), up to
``guard_options.stream_hold_chars`` of text; a longer answer is refused, not let through unjudged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from relaygate.context import RequestContext, StreamStopped
from relaygate.errors import GatewayError, GuardError
from relaygate.guards.base import Finding, Guard, GuardFailure, TextStage
from relaygate.guards.patterns import PatternGuard, PatternStage
from relaygate.guards.results import GuardResult

if TYPE_CHECKING:
    from relaygate.guards.engine import Guards

__all__ = ["StreamGuards"]

JSON = dict[str, Any]


class _Choice:
    __slots__ = ("finish_reason", "finished", "pieces", "stages")

    def __init__(self, stages: list[TextStage]) -> None:
        self.stages = stages
        self.pieces: list[str] = []
        self.finished = False
        self.finish_reason: str | None = None


class StreamGuards:
    """The output guards of one streamed answer (an :class:`~relaygate.context.OutputFilter`)."""

    def __init__(self, engine: Guards, guards: Sequence[Guard]) -> None:
        self.engine = engine
        staged = [guard for guard in guards if guard.incremental and guard.action != "observe"]
        self.staged = sorted(staged, key=lambda guard: guard.action != "redact")
        self.at_end = [guard for guard in guards if guard not in staged]
        holding = [guard for guard in self.at_end if guard.action == "block"]
        self.holder = holding[0] if holding else None
        self.limit = engine.options.stream_hold_chars
        self.choices: dict[int, _Choice] = {}
        self.chars = 0
        self.template: JSON | None = None
        self.fired: dict[str, str] = {}
        # Stages that could not judge (a match still in progress at the hold's bound), by guard id.
        self.failed: dict[str, str] = {}
        self.over_limit = False
        # Set once the filter has stopped the stream: the error the answer ends with.
        self.error: GatewayError | None = None

    @property
    def holds(self) -> bool:
        """Whether the answer must be held whole until the guards that judge it whole have spoken."""
        return self.holder is not None

    # --- OutputFilter ------------------------------------------------------------------------------

    def on_chunk(self, chunk: JSON) -> list[JSON] | None:
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list):
            return None
        self.template = chunk
        replaced = False
        kept: list[Any] = []
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                kept.append(choice)
                continue
            content = delta.get("content")
            text = content if isinstance(content, str) else ""
            finish = choice.get("finish_reason")
            index = choice.get("index", 0)
            state = self._choice(index)
            if (not text and not finish) or state.finished:
                kept.append(choice)
                continue
            released = self._feed(index, state, text, final=bool(finish))
            if finish:
                state.finished = True
                state.finish_reason = str(finish)
            if released == text:
                kept.append(choice)
                continue
            replaced = True
            if released or finish or len(delta) > 1:
                kept.append({**choice, "delta": {**delta, "content": released}})
        if not replaced:
            return None
        return [{**chunk, "choices": kept}] if kept else []

    def on_model_call_done(self, ctx: RequestContext) -> None:
        """A tool loop's model call ended and another follows (relaygate.mcp.loop): the answer goes on, so
        its choices are not finished (the text judged so far stays judged)."""
        for state in self.choices.values():
            state.finished = False
            state.finish_reason = None

    def close(self) -> list[JSON]:
        out: list[JSON] = []
        for index, state in sorted(self.choices.items()):
            if state.finished:
                continue
            released = self._feed(index, state, "", final=True)
            state.finished = True
            if released and self.template is not None:
                choice = {"index": index, "delta": {"content": released}, "logprobs": None, "finish_reason": None}
                out.append(self._chunk([choice]))
        return out

    # --- the end of the stream ---------------------------------------------------------------------

    async def finish(self, ctx: RequestContext) -> GatewayError | None:
        """Records every guard's result; the error that refuses the answer, if the stream was held."""
        ctx.guard_results.extend(self.stage_results())
        if self.over_limit and self.holder is not None:
            ctx.guard_results.extend(
                self.engine.result(guard, None, GuardFailure(_too_long(self.limit)))
                for guard in self.at_end
                if guard.action == "block"
            )
        # An answer already refused is not judged further, except by observers.
        guards = [guard for guard in self.at_end if self.error is None or guard.action == "observe"]
        texts = self.texts()
        if guards and texts:
            try:
                await self.engine.run(guards, texts, ctx)
            except GatewayError as error:
                return error
        return self.error

    def texts(self) -> list[str]:
        """The answer's text by choice, as it went out; a choice that only called tools has none."""
        texts = []
        for _, state in sorted(self.choices.items()):
            text = "".join(state.pieces)
            if text or state.finish_reason != "tool_calls":
                texts.append(text)
        return texts

    # --- inside --------------------------------------------------------------------------------------

    def _choice(self, index: int) -> _Choice:
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = _Choice([guard.text_stage(self.limit) for guard in self.staged])
        return state

    def _feed(self, index: int, state: _Choice, text: str, *, final: bool) -> str:
        if self.holder is not None:
            self.chars += len(text)
            if self.chars > self.limit:
                self.over_limit = True
                error = GuardError(f"Guard '{self.holder.id}' could not judge the answer: {_too_long(self.limit)}.")
                self._stop(error)
        for guard, stage in zip(self.staged, state.stages, strict=True):
            try:
                text = stage.feed(text, final)
            except Finding as finding:
                self.fired[guard.id] = finding.reason
                result = GuardResult(guard.id, guard.type, guard.stage, guard.action, False, reason=finding.reason)
                self._stop(self.engine.error(result, "answer"))
            except GuardFailure as failure:
                self.failed[guard.id] = failure.message
                self._stop(self.engine.error(self.engine.result(guard, None, failure), "answer"))
        if self.at_end:
            state.pieces.append(text)
        return text

    def _stop(self, error: GatewayError) -> None:
        self.error = error
        open_choices = [index for index, state in sorted(self.choices.items()) if not state.finished] or [0]
        for index in open_choices:
            self.choices[index].finished = True
        choices: list[JSON] = [
            {"index": index, "delta": {}, "logprobs": None, "finish_reason": "content_filter"} for index in open_choices
        ]
        raise StreamStopped(self._chunk(choices), error)

    def _chunk(self, choices: list[JSON]) -> JSON:
        chunk = {**(self.template or {"object": "chat.completion.chunk"}), "choices": choices}
        if chunk.get("usage") is not None:
            chunk["usage"] = None
        return chunk

    def stage_results(self) -> list[GuardResult]:
        """The results of the guards that judged the text as it went."""
        results = []
        for position, guard in enumerate(self.staged):
            stages = [state.stages[position] for state in self.choices.values()]
            redactions = sum(stage.redactions for stage in stages)
            reason = self.fired.get(guard.id)
            error = self.failed.get(guard.id)
            if reason is None and redactions:
                labels = [label for stage in stages if isinstance(stage, PatternStage) for label in stage.labels]
                reason = guard.describe(labels) if isinstance(guard, PatternGuard) else None
            results.append(
                GuardResult(
                    guard.id,
                    guard.type,
                    guard.stage,
                    guard.action,
                    reason is None and error is None and not redactions,
                    reason=reason,
                    error=error,
                    redactions=redactions,
                )  # fmt: skip
            )
        return results


def _too_long(limit: int) -> str:
    return f"the streamed answer is longer than guard_options.stream_hold_chars ({limit} characters)"
