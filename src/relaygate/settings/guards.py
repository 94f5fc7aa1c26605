"""Guards: each guard's type, stage and action, and how guards answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from relaygate.settings.base import SettingsModel

__all__ = ["REDACTING_GUARDS", "GuardOptions", "GuardSettings", "GuardType"]

GuardType = Literal["word_count", "regex", "pii", "json_schema", "moderation", "llm_judge", "custom"]
# Guards that can rewrite what they find instead of refusing it.
REDACTING_GUARDS = frozenset({"regex", "pii"})


class GuardSettings(SettingsModel):
    """One guard: what it checks (``type`` and its ``parameters``), when and what it does on a finding.

    The parameters of each type are checked when the gateway is built (:mod:`relaygate.guards`).
    """

    # What the guard checks (see the guards guide for each type's parameters).
    type: GuardType
    # input: what goes to the model; output: what comes back.
    stage: Literal["input", "output"]
    # block refuses the call; redact rewrites what was found (regex and pii); observe records it and lets the call
    # through.
    action: Literal["block", "redact", "observe"] = "block"
    # The type's parameters; a request's extra.guards may override them for that request.
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _action_fits_type(self) -> GuardSettings:
        if self.action == "redact" and self.type not in REDACTING_GUARDS:
            raise ValueError(f"action redact is for guards of type {' or '.join(sorted(REDACTING_GUARDS))}")
        if self.type == "json_schema" and self.stage != "output":
            raise ValueError("a json_schema guard checks answers: its stage is output")
        return self


class GuardOptions(SettingsModel):
    """How guards answer and how much of a stream they may hold."""

    # 400 (OpenAI's status for a refused request) or 446, the status LangDB's gateway uses for guards.
    violation_status: Literal[400, 446] = 400
    # The most text of a stream that a guard holds back. Guards that judge a whole answer (json_schema,
    # llm_judge, moderation, custom) hold a streamed answer until it is complete: a longer answer is
    # refused. regex and pii hold back a match still in progress: past this, a blocking guard refuses
    # the answer and a redacting one redacts all it holds. Never is unjudged text let through.
    stream_hold_chars: int = Field(100_000, ge=1)
