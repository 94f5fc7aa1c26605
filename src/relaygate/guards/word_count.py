"""``word_count``: at least ``min_words`` and at most ``max_words`` words (split on whitespace).

On the input stage every text that goes upstream counts (all messages, all text parts). On a stream
the count grows chunk by chunk: going past ``max_words`` stops the stream there, and ``min_words`` is
judged when the choice ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from relaygate.context import RequestContext
from relaygate.guards.base import Finding, Guard, GuardEnv, GuardSpec, Parameters, TextStage, parse_parameters
from relaygate.guards.results import Verdict

__all__ = ["WordCountGuard"]


class WordCountParameters(Parameters):
    min_words: int | None = Field(None, ge=0)
    max_words: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _some_bound(self) -> WordCountParameters:
        if self.min_words is None and self.max_words is None:
            raise ValueError("give min_words, max_words or both")
        if self.min_words is not None and self.max_words is not None and self.min_words > self.max_words:
            raise ValueError("min_words is more than max_words")
        return self


class WordCountGuard(Guard):
    type = "word_count"

    def __init__(self, spec: GuardSpec, env: GuardEnv) -> None:
        super().__init__(spec, env)
        self.parameters = parse_parameters(WordCountParameters, spec.parameters)

    @property
    def incremental(self) -> bool:
        return True

    def text_stage(self, hold_chars: int) -> TextStage:
        return _Counter(self)

    def problem(self, count: int, final: bool) -> str | None:
        most, least = self.parameters.max_words, self.parameters.min_words
        if most is not None and count > most:
            return f"more than {most} words" if not final else f"{count} words, more than {most}"
        if final and least is not None and count < least:
            return f"{count} words, fewer than {least}"
        return None

    async def judge(self, texts: Sequence[str], ctx: RequestContext) -> Verdict:
        problem = self.problem(sum(len(text.split()) for text in texts), True)
        return Verdict(problem is None, problem)


class _Counter(TextStage):
    def __init__(self, guard: WordCountGuard) -> None:
        self.guard = guard
        self.count = 0
        self.in_word = False

    def feed(self, text: str, final: bool) -> str:
        if text:
            words = len(text.split())
            if words and self.in_word and not text[0].isspace():
                words -= 1  # the word the last chunk ended in goes on here
            self.count += words
            self.in_word = not text[-1].isspace()
        problem = self.guard.problem(self.count, final)
        if problem is not None:
            raise Finding(problem)
        return text
