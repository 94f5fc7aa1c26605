"""Guards that look for patterns in text (``regex``, ``pii``): finding, redacting, and doing both on a stream.

On a stream a match may be cut by a chunk boundary (``"sk-ab"`` now, ``"cdefgh12"`` next). A
:class:`PatternStage` therefore holds back the tail of the text from the first place where a match may
still begin: a partial match of any pattern at the end of the text (the ``regex`` module's
``partial=True``), or a complete match that reaches the end and may grow. The tail is bounded
(``guard_options.stream_tail_chars``); past that bound the oldest held text goes on. At the choice's
end whatever is held is judged as final.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import regex

from relaygate.context import RequestContext
from relaygate.guards.base import Finding, Guard, TextStage
from relaygate.guards.results import Verdict

__all__ = ["Detector", "Match", "PatternGuard", "PatternStage"]

# A candidate that fails its check (a card number cut before its last group) may still grow into a
# valid one while it ends this close to the end of the text (a separator and a character).
GROWTH = 2


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of thing to find: a pattern, an optional check of each candidate, a label and a placeholder."""

    label: str
    pattern: regex.Pattern[str]
    placeholder: str
    check: Callable[[str], bool] | None = None
    # A cheap test that the text may hold a match at all; only used on whole texts.
    hint: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class Match:
    start: int
    end: int
    detector: Detector
    partial: bool = False


class PatternGuard(Guard):
    """Finds what its detectors describe; blocks, redacts or observes it."""

    detectors: Sequence[Detector]
    subject_label: ClassVar[str] = "found"

    @property
    def incremental(self) -> bool:
        return True

    def text_stage(self, tail_chars: int) -> TextStage:
        return PatternStage(self, tail_chars)

    def scan(self, text: str, *, partial: bool = False) -> Iterator[Match]:
        """Matches in ``text``; with ``partial``, also matches that the text's end cuts short."""
        for detector in self.detectors:
            if not partial and detector.hint is not None and not detector.hint(text):
                continue
            for found in detector.pattern.finditer(text, partial=partial):
                start, end = found.span()
                if found.partial:
                    if end > start:
                        yield Match(start, end, detector, partial=True)
                    continue
                if detector.check is None or detector.check(found.group()):
                    yield Match(start, end, detector)
                elif partial and len(text) - end <= GROWTH:
                    # More characters may make it valid: "GB82 WEST 1234 5698 " is an IBAN cut short.
                    yield Match(start, end, detector, partial=True)

    def describe(self, labels: Sequence[str]) -> str:
        return f"{self.subject_label} {', '.join(dict.fromkeys(labels))}"

    async def judge(self, texts: Sequence[str], ctx: RequestContext) -> Verdict:
        if self.action == "redact":
            out: list[str] = []
            labels: list[str] = []
            redactions = 0
            for text in texts:
                stage = PatternStage(self, 0)
                out.append(stage.feed(text, True))
                labels.extend(stage.labels)
                redactions += stage.redactions
            if not redactions:
                return Verdict(True)
            return Verdict(False, self.describe(labels), texts=out, redactions=redactions)
        labels = [match.detector.label for text in texts for match in distinct(self.scan(text))]
        return Verdict(not labels, self.describe(labels) if labels else None)


class PatternStage(TextStage):
    """A pattern guard on one streamed choice: holds back what may become a match, then blocks or redacts."""

    def __init__(self, guard: PatternGuard, tail_chars: int) -> None:
        self.guard = guard
        self.tail_chars = tail_chars
        self.held = ""
        self.labels: list[str] = []
        self.redactions = 0

    def feed(self, text: str, final: bool) -> str:
        text = self.held + text if self.held else text
        if not text:
            return ""
        end = len(text)
        cut = end  # text[:cut] goes on, text[cut:] is held
        matches: list[Match] = []
        # A complete match at the end may still grow: a redaction waits for all of it, a block need not.
        grows = not final and self.guard.action != "block"
        for match in self.guard.scan(text, partial=not final):
            if match.partial or (grows and match.end == end):
                cut = min(cut, match.start)
            else:
                matches.append(match)
        matches = distinct(matches)
        if matches and self.guard.action == "block":
            self.labels.extend(match.detector.label for match in matches)
            raise Finding(self.guard.describe(self.labels))
        moved = True
        while moved:  # a match the cut would split waits whole
            moved = False
            for match in matches:
                if match.start < cut < match.end:
                    cut, moved = match.start, True
        if end - cut > self.tail_chars and not final:
            cut = end - self.tail_chars
            for match in matches:
                if match.start < cut < match.end:
                    cut = match.end
        out: list[str] = []
        at = 0
        for match in matches:
            if match.end > cut:
                continue
            out.append(text[at : match.start])
            out.append(match.detector.placeholder)
            self.labels.append(match.detector.label)
            self.redactions += 1
            at = match.end
        out.append(text[at:cut])
        self.held = text[cut:]
        return "".join(out)


def distinct(matches: Iterable[Match]) -> list[Match]:
    """Matches in text order without overlaps: where two overlap, the earlier (then the first detector's) wins."""
    out: list[Match] = []
    for match in sorted(matches, key=lambda match: match.start):
        if not out or match.start >= out[-1].end:
            out.append(match)
    return out
