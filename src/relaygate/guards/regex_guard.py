"""``regex``: the text must match none (the default), any or all of the given patterns.

``match: none`` makes the patterns forbidden (secrets, internal host names): such a guard blocks,
redacts (with ``replacement``) or observes what matches, and on a stream it judges the text as it
grows. ``match: any`` and ``match: all`` make the patterns required, which only a whole text can
show, so on a stream they judge the finished answer. ``match_type`` is accepted as LangDB's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import regex
from pydantic import AliasChoices, Field, field_validator

from relaygate.context import RequestContext
from relaygate.guards.base import GuardEnv, GuardSpec, Parameters, parse_parameters
from relaygate.guards.patterns import Detector, PatternGuard
from relaygate.guards.results import Verdict

__all__ = ["RegexGuard"]


class RegexParameters(Parameters):
    patterns: list[str] = Field(min_length=1)
    match: Literal["none", "any", "all"] = Field("none", validation_alias=AliasChoices("match", "match_type"))
    ignore_case: bool = False
    replacement: str = "[REDACTED]"

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            try:
                regex.compile(pattern)
            except regex.error as exc:
                raise ValueError(f"pattern #{index + 1} is not a valid regular expression: {exc}") from None
        return patterns


class RegexGuard(PatternGuard):
    type = "regex"

    def __init__(self, spec: GuardSpec, env: GuardEnv) -> None:
        super().__init__(spec, env)
        self.parameters = parse_parameters(RegexParameters, spec.parameters)
        if self.parameters.match != "none" and self.action == "redact":
            raise ValueError(f"action redact needs match: none (with match: {self.parameters.match} they are required)")
        flags = regex.IGNORECASE if self.parameters.ignore_case else 0
        count = len(self.parameters.patterns)
        self.detectors = [
            Detector(f"pattern #{index + 1} of {count}", regex.compile(pattern, flags), self.parameters.replacement)
            for index, pattern in enumerate(self.parameters.patterns)
        ]

    @property
    def incremental(self) -> bool:
        return self.parameters.match == "none"

    def describe(self, labels: Sequence[str]) -> str:
        return f"matches {', '.join(dict.fromkeys(labels))}"

    async def judge(self, texts: Sequence[str], ctx: RequestContext) -> Verdict:
        if self.parameters.match == "none":
            return await super().judge(texts, ctx)
        matched = {
            index
            for index, detector in enumerate(self.detectors)
            if any(detector.pattern.search(text) for text in texts)
        }
        if self.parameters.match == "any":
            return Verdict(True) if matched else Verdict(False, "matches none of the required patterns")
        missing = [self.detectors[index].label for index in range(len(self.detectors)) if index not in matched]
        return Verdict(True) if not missing else Verdict(False, f"does not match {', '.join(missing)}")
