"""Guards that look for patterns in text (``regex``, ``pii``): finding, redacting, and doing both on a stream.

On a stream a match may be cut by a chunk boundary (``"sk-ab"`` now, ``"cdefgh12"`` next), and a match
that is complete may still grow (``jane@mail.corp`` may go on as ``jane@mail.corp-secret.com``). A
:class:`PatternStage` therefore holds back the text from the earliest place where a match is still in
progress: a partial match of a pattern at the end of the text (the ``regex`` module's ``partial=True``),
or a match, or a candidate its check refuses, that the pattern could carry on past the end of the text.
What comes before that place is settled (the whole text would be judged alike there), so it goes on at
once, redacted where it matched. The last few characters passed on stay in view, so that lookbehinds,
``\\b`` and ``^`` see what they would see in the whole text.

The hold is bounded (``guard_options.stream_hold_chars``). When a match is still in progress at the
bound, the stage fails closed rather than pass on text nobody judged: it raises
:class:`~relaygate.guards.base.GuardFailure`, which stops the stream with a ``guard_error``, and none of
what it held goes out. A redacting guard does so too: redacting what it held and going on would judge
the rest of that match out of context (the body of a long key without its header) and pass it on.
A match of no characters finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import regex

from relaygate.context import RequestContext
from relaygate.guards.base import Finding, Guard, GuardFailure, TextStage
from relaygate.guards.results import Edit, Verdict

__all__ = ["Detector", "Match", "PatternGuard", "PatternStage"]

# Text passed on that stays in view of the patterns (lookbehinds, \b, ^) when the held text is scanned.
CONTEXT_CHARS = 32
# Held text up to this length is scanned again with every chunk. A longer hold (a long match in
# progress) is scanned again once it has grown by a quarter, so that it costs linear time, not quadratic.
RESCAN_EVERY_CHUNK_CHARS = 1024


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


class PatternGuard(Guard):
    """Finds what its detectors describe; blocks, redacts or observes it."""

    detectors: Sequence[Detector]
    subject_label: ClassVar[str] = "found"
    # A cheap test shared by every detector: a text it does not find anything in holds no match of any.
    precheck: regex.Pattern[str] | None = None

    @property
    def incremental(self) -> bool:
        return True

    def text_stage(self, hold_chars: int) -> TextStage:
        return PatternStage(self, hold_chars)

    def scan(self, text: str, pos: int = 0) -> Iterator[Match]:
        """The matches in ``text`` from ``pos`` on, of every detector (they may overlap)."""
        if self.precheck is not None and self.precheck.search(text) is None:
            return
        hinted: dict[Callable[[str], bool], bool] = {}  # several detectors share a hint: asked once
        for detector in self.detectors:
            hint = detector.hint
            if hint is not None:
                may = hinted.get(hint)
                if may is None:
                    may = hinted[hint] = hint(text)
                if not may:
                    continue
            for found in detector.pattern.finditer(text, pos):
                start, end = found.span()
                if end > start and (detector.check is None or detector.check(found.group())):
                    yield Match(start, end, detector)

    def scan_growing(self, text: str, pos: int) -> tuple[list[Match], int, Detector | None]:
        """The settled matches in ``text`` from ``pos`` on, where the earliest match still in progress
        starts (``len(text)`` if none) and its detector."""
        settled: list[Match] = []
        held_from, holder = len(text), None
        for detector in self.detectors:
            start = _in_progress(detector, text, pos, held_from, settled)
            if start < held_from:
                held_from, holder = start, detector
        return settled, held_from, holder

    def describe(self, labels: Sequence[str]) -> str:
        return f"{self.subject_label} {', '.join(dict.fromkeys(labels))}"

    def redact(self, text: str) -> tuple[str, list[Edit], list[str]]:
        """``text`` redacted, the edits that made it, and what they replaced."""
        matches = distinct(self.scan(text))
        edits = [(match.start, match.end, match.detector.placeholder) for match in matches]
        return apply(text, edits), edits, [match.detector.label for match in matches]

    async def judge(self, texts: Sequence[str], ctx: RequestContext) -> Verdict:
        if self.action == "redact":
            out: list[str] = []
            edits: list[list[Edit]] = []
            labels: list[str] = []
            for text in texts:
                redacted, changes, found = self.redact(text)
                out.append(redacted)
                edits.append(changes)
                labels.extend(found)
            if not labels:
                return Verdict(True)
            return Verdict(False, self.describe(labels), texts=out, redactions=len(labels), edits=edits)
        labels = [match.detector.label for text in texts for match in distinct(self.scan(text))]
        return Verdict(not labels, self.describe(labels) if labels else None)


def _in_progress(detector: Detector, text: str, pos: int, limit: int, settled: list[Match]) -> int:
    """Where a match of ``detector`` in ``text[pos:]`` is still in progress (``limit`` or more if none
    starts before ``limit``); the settled matches before it go to ``settled``."""
    pattern = detector.pattern
    searched = pos
    for found in pattern.finditer(text, pos, partial=True):
        start, end = found.span()
        if found.partial:
            # An empty partial match at the end only says that a match may begin there.
            return start if end > start else limit
        if start >= limit:
            return limit
        # The regex module prefers a complete match to a partial one, even a later complete one: a match
        # still in progress may start before this one (rare: this runs only where a pattern matched).
        for at in range(searched, start):
            if pattern.fullmatch(text, at, partial=True) is not None:
                return at
        if pattern.fullmatch(text, start, partial=True) is not None:
            # The pattern could go on past the end from here: more text may make this a longer match
            # (jane@mail.corp -> jane@mail.corp-secret.com), or a valid one (a card before its last group).
            return start
        if end > start and (detector.check is None or detector.check(found.group())):
            settled.append(Match(start, end, detector))
        searched = end if end > start else end + 1
    return limit


class PatternStage(TextStage):
    """A pattern guard on one streamed choice: holds back what may become a match, then blocks or redacts."""

    def __init__(self, guard: PatternGuard, hold_chars: int) -> None:
        self.guard = guard
        self.hold_chars = hold_chars
        self.before = ""  # the end of the text passed on, in view of lookbehinds
        self.held = ""
        self.scanned = 0  # how much of the held text the last scan saw
        self.labels: list[str] = []
        self.redactions = 0

    def feed(self, text: str, final: bool) -> str:
        held = self.held + text if self.held else text
        if not held:
            return ""
        if not final and self.scanned > RESCAN_EVERY_CHUNK_CHARS and len(held) <= self.hold_chars:
            if len(held) - self.scanned < self.scanned // 4:
                self.held = held  # a long match in progress: scanned again once it has grown enough
                return ""
        buffer = self.before + held
        pos, end = len(self.before), len(buffer)
        holder: Detector | None = None
        if final:
            matches, cut = distinct(self.guard.scan(buffer, pos)), end
        else:
            settled, cut, holder = self.guard.scan_growing(buffer, pos)
            if not settled and cut == end:  # the usual chunk: nothing found, nothing in progress
                self.held, self.scanned = "", 0
                self.before = buffer[-CONTEXT_CHARS:]
                return held
            matches = distinct(settled)
        if matches and self.guard.action == "block":
            self.labels.extend(match.detector.label for match in matches)
            raise Finding(self.guard.describe(self.labels))
        moved = True
        while moved:  # a match the cut would split waits whole
            moved = False
            for match in matches:
                if match.start < cut < match.end:
                    cut, moved = match.start, True
        if end - cut > self.hold_chars:
            # Fail closed, whatever the action: what is held may be part of a match. Redacting it and
            # going on would judge the rest of that match out of context (the body of a long key
            # without its header) and pass it on.
            assert holder is not None  # only a match in progress holds text back
            raise GuardFailure(
                f"a possible {holder.label} ran past guard_options.stream_hold_chars ({self.hold_chars} characters)"
            )
        done = [match for match in matches if match.end <= cut]
        edits = [(match.start, match.end, match.detector.placeholder) for match in done]
        self.labels.extend(match.detector.label for match in done)
        self.redactions += len(done)
        out = apply(buffer[:cut], edits, pos)
        self.held = buffer[cut:]
        self.before = buffer[max(0, cut - CONTEXT_CHARS) : cut]
        self.scanned = len(self.held)
        return out


def apply(text: str, edits: Iterable[Edit], start: int = 0) -> str:
    """``text[start:]`` with each edit's span (sorted, not overlapping) replaced."""
    out: list[str] = []
    at = start
    for begin, end, replacement in edits:
        out.append(text[at:begin])
        out.append(replacement)
        at = end
    out.append(text[at:])
    return "".join(out)


def distinct(matches: Iterable[Match]) -> list[Match]:
    """Matches in text order without overlaps: where two overlap, the earlier (then the first detector's) wins."""
    out: list[Match] = []
    for match in sorted(matches, key=lambda match: match.start):
        if not out or match.start >= out[-1].end:
            out.append(match)
    return out
