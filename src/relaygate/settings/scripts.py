"""Script routers: JavaScript that picks a request's model, named in the config or carried by a request."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from relaygate.settings.base import SettingsModel

__all__ = ["ENGINE_MISSING", "MAX_SCRIPT_CHARS", "OnScriptError", "ScriptLimits", "ScriptRouterSettings"]

# Why a script cannot run where the JavaScript engine (the `scripts` extra: V8 is 82 MB, more than the rest
# of what serving needs) is not installed.
ENGINE_MISSING = (
    "script routers need the JavaScript engine, which is not installed: pip install 'relaygate[scripts]' "
    "(with ./scripts/serve: RELAYGATE_EXTRAS=scripts ./scripts/serve)"
)
# A router's script is a function, not a library: 64 KiB is far more than one needs.
MAX_SCRIPT_CHARS = 65_536
# What a script that throws, runs out of time or memory, or names a model the gateway cannot route gets:
# ``reject``, a 400 naming the router; ``fallback``, the request's own ``model`` (when it names one).
OnScriptError = Literal["reject", "fallback"]


class ScriptLimits(SettingsModel):
    """The sandbox of a script router: how long one call may run, how much memory its engine may take, and
    what a failing script gets. The defaults of every script; a named router may set its own."""

    # Milliseconds one call of route() may run (its first call also compiles the script, within the same
    # limit); then V8 stops it and the request gets a 400 router_script_timeout (or its model, on fallback).
    timeout_ms: float = Field(50.0, gt=0, le=10_000)
    # The V8 heap of the script's engine, in MiB; past it the script is stopped (router_script_memory).
    max_memory_mb: int = Field(32, ge=8, le=1024)
    # reject: a 400 naming the router and what went wrong; fallback: the request's model, as if no router
    # were there (traced as relaygate.router.outcome = fallback).
    on_error: OnScriptError = "reject"


class ScriptRouterSettings(SettingsModel):
    """A named router (``routers: {kg_random_router: {type: script, script: ...}}``), which a request
    names in its ``router`` object: ``{"name": "kg_random_router"}``.

    The script defines ``route({request, headers, models, metrics})`` and returns ``{model: "provider/model"}``,
    ``{targets: [...]}`` (tried in order) or ``{model: null}`` for the request's own model.
    """

    # The only kind of named router: strategies over fixed targets are virtual models (``models:``).
    type: Literal["script"] = "script"
    # JavaScript defining route(); it runs in V8 with no I/O (no network, files, clock or modules).
    script: str = Field(min_length=1, max_length=MAX_SCRIPT_CHARS)
    # This router's time limit in milliseconds; unset: router_scripts.timeout_ms.
    timeout_ms: float | None = Field(None, gt=0, le=10_000)
    # This router's heap limit in MiB; unset: router_scripts.max_memory_mb.
    max_memory_mb: int | None = Field(None, ge=8, le=1024)
    # What this router's failing script gets (reject or fallback); unset: router_scripts.on_error.
    on_error: OnScriptError | None = None

    def limits_over(self, defaults: ScriptLimits) -> ScriptLimits:
        """This router's limits: its own fields over ``defaults``."""
        return ScriptLimits(
            timeout_ms=self.timeout_ms if self.timeout_ms is not None else defaults.timeout_ms,
            max_memory_mb=self.max_memory_mb if self.max_memory_mb is not None else defaults.max_memory_mb,
            on_error=self.on_error if self.on_error is not None else defaults.on_error,
        )
