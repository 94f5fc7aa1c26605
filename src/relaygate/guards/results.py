"""What a guard says (:class:`Verdict`) and what the gateway keeps of each guard run (:class:`GuardResult`)."""

from __future__ import annotations

from dataclasses import dataclass

from relaygate.context import Usage

__all__ = ["Edit", "GuardResult", "Verdict"]

# A redaction in a text: the span (start, end) and what replaced it.
Edit = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One guard's judgement of the texts it was given.

    ``reason`` says what failed without quoting what was found (an e-mail address, a key), so that it
    may go to the caller, the trace and the ledger. A redacting guard returns the rewritten ``texts``.
    Guards that call a model say which and what it used, so that the ledger can price the call.
    """

    passed: bool
    reason: str | None = None
    texts: list[str] | None = None
    redactions: int = 0
    edits: list[list[Edit]] | None = None
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None


@dataclass(slots=True)
class GuardResult:
    """One guard run of one request, kept on ``ctx.guard_results`` for the trace and the ledger."""

    id: str
    type: str
    stage: str
    action: str
    passed: bool
    reason: str | None = None
    # The guard itself failed (its model did not answer, its code raised): it could not judge.
    error: str | None = None
    redactions: int = 0
    provider: str | None = None
    model: str | None = None
    usage: Usage | None = None
    duration_s: float = 0.0
    # The error came from a model or an endpoint the guard called (a 502 rather than a 500).
    error_upstream: bool = False

    @property
    def refused(self) -> bool:
        """Whether this result refused the call (a block guard that failed, or any guard but an observer
        that could not judge)."""
        if self.action == "observe":
            return False
        return self.error is not None or (self.action == "block" and not self.passed)
