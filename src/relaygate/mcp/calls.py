"""The MCP tool calls of one model answer: made in parallel, each in an ``execute_tool`` span, their results
judged by the request's input guards and turned into the ``tool`` messages the model reads next.

A call that does not give a result (the tool failed, took longer than ``mcp.tool_timeout``, its server is
down or does not know it) still gives a message: an error result that says what happened, so the model can
answer anyway. Nothing here is a 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from relaygate.mcp.errors import McpFailure, ToolTimeout
from relaygate.mcp.pool import McpPool

if TYPE_CHECKING:
    from mcp import types

    from relaygate.context import RequestContext
    from relaygate.guards import Guard, Guards
    from relaygate.telemetry import Telemetry

__all__ = ["ToolCall", "run_calls"]

logger = logging.getLogger("relaygate.mcp")

# A tool result longer than this is cut (the model's context is not the place for megabytes).
MAX_RESULT_CHARS = 100_000


@dataclass(slots=True)
class ToolCall:
    """One MCP tool call the model asked for, and what came of it."""

    id: str
    name: str
    server: str
    tool: str
    arguments: str
    content: str = ""
    is_error: bool = False

    def message(self) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": self.id, "content": self.content}


async def run_calls(
    calls: list[ToolCall],
    ctx: RequestContext,
    *,
    pool: McpPool,
    timeout: float,
    telemetry: Telemetry | None,
    guards: Guards | None,
    input_guards: tuple[Guard, ...],
) -> None:
    """Make ``calls`` (in parallel), fill in their results, and run the input guards over them (which may
    redact them, or raise the refusal of the request)."""
    async with anyio.create_task_group() as group:
        for call in calls:
            group.start_soon(_one, call, ctx, pool, timeout, telemetry)
    if guards is not None and input_guards:
        texts = [call.content for call in calls]
        judged = await guards.run(input_guards, texts, ctx)
        for call, text in zip(calls, judged, strict=True):
            call.content = text


async def _one(call: ToolCall, ctx: RequestContext, pool: McpPool, timeout: float, telemetry: Telemetry | None) -> None:
    span = telemetry.tool_span(ctx, call.server, call.tool, call.id) if telemetry is not None else None
    error_type: str | None = None
    try:
        arguments = _arguments(call.arguments)
        if arguments is None:
            error_type = "invalid_arguments"
            call.content, call.is_error = f"Error: the arguments of {call.name} are not a JSON object.", True
            return
        try:
            result = await pool.call_tool(call.server, call.tool, arguments, timeout=timeout)
        except McpFailure as failure:
            error_type = "timeout" if isinstance(failure, ToolTimeout) else type(failure).__name__
            call.content, call.is_error = f"Error: {failure.message}.", True
            return
        text = result_text(result)
        if result.isError:
            error_type = "tool_error"
            call.content, call.is_error = f"Error: the tool {call.tool} failed: {text}", True
        else:
            call.content = text
    finally:
        if span is not None and telemetry is not None:
            telemetry.end_tool_span(span, error_type)


def result_text(result: types.CallToolResult) -> str:
    """What a tool result says, as the text of a ``tool`` message."""
    from mcp import types

    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.ImageContent | types.AudioContent):
            parts.append(f"[{block.type}: {block.mimeType}, {len(block.data)} bytes of base64]")
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            parts.append(resource.text if isinstance(resource, types.TextResourceContents) else f"[{resource.uri}]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[{block.uri}]")
    if not parts and result.structuredContent is not None:
        parts.append(orjson.dumps(result.structuredContent).decode())
    text = "\n".join(parts)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " [cut]"


def _arguments(raw: str) -> dict[str, Any] | None:
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
