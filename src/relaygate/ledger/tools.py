"""What the ledger writes for an MCP tool call served at ``/mcp``: a :class:`~relaygate.store.CallRecord` of
endpoint ``mcp``.

The call's row names the MCP server as its provider (kind ``mcp``) and the tool as its model; the name the client
called it by (``calc__add`` at ``/mcp``) is its requested model. It has no tokens and no cost; its latency is the
call's duration, and a call that failed carries its error: a code in ``error`` (``tool_error`` for a tool that
answered an error, ``tool_timeout``, ``mcp_server_unavailable``, ``rate_limit_exceeded``, ...) and the message in
its one attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from relaygate.ids import new_uuid
from relaygate.store import CallRecord

if TYPE_CHECKING:
    from relaygate.context import RequestContext

__all__ = ["MCP_ENDPOINT", "ToolCallOutcome", "tool_call_record"]

MCP_ENDPOINT = "mcp"
# Error messages are kept whole up to this length.
MAX_MESSAGE = 2000


@dataclass(frozen=True, slots=True)
class ToolCallOutcome:
    """How one tool call went: ``status`` 200 when the server gave a result (``error`` ``tool_error`` when that
    result is an error), else the status of what kept it from one."""

    server: str
    tool: str
    called_as: str
    started_wall: float
    duration: float
    status: int = 200
    error: str | None = None
    message: str | None = None


def tool_call_record(ctx: RequestContext, outcome: ToolCallOutcome) -> CallRecord:
    """The ledger's row of a tool call made for the request on ``ctx`` (its project, key and ids)."""
    started = datetime.fromtimestamp(outcome.started_wall, UTC)
    ended = datetime.fromtimestamp(outcome.started_wall + outcome.duration, UTC)
    message = (
        outcome.message
        if outcome.message is None or len(outcome.message) <= MAX_MESSAGE
        else (outcome.message[:MAX_MESSAGE] + "...")
    )
    return CallRecord(
        id=new_uuid(),
        project_id=ctx.project_id or "default",
        trace_id=ctx.trace_id,
        started_at=started,
        ended_at=ended,
        thread_id=ctx.thread_id,
        run_id=ctx.run_id,
        label=ctx.label,
        tags=dict(ctx.tags),
        key_id=ctx.key.id if ctx.key is not None else None,
        requested_model=outcome.called_as,
        model=outcome.tool,
        provider=outcome.server,
        provider_kind="mcp",
        endpoint=MCP_ENDPOINT,
        status=outcome.status,
        error=outcome.error,
        latency_ms=outcome.duration * 1000,
        attempts=[
            {
                "provider": outcome.server,
                "model": outcome.tool,
                "status": outcome.status,
                "error": message,
                "duration_ms": round(outcome.duration * 1000, 3),
            }
        ],
    )
