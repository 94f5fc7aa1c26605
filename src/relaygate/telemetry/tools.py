"""The span of one tool call: GenAI's ``execute_tool`` (an INTERNAL span named ``execute_tool {tool}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from relaygate.telemetry import names

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.telemetry.spans import Telemetry

__all__ = ["ToolSpan"]


class ToolSpan:
    """An ``execute_tool`` span, child of the current span (the request's): started at the call, ended by
    :meth:`end` with the call's outcome. Without telemetry it records nothing."""

    __slots__ = ("span",)

    def __init__(
        self,
        telemetry: Telemetry | None,
        ctx: RequestContext,
        *,
        tool: str,
        server: str,
        call_id: str | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.span: Span | None = None
        if telemetry is None:
            return
        attributes: dict[str, Any] = {
            names.OPERATION: names.OPERATION_EXECUTE_TOOL,
            names.TOOL_NAME: tool,
            # Run by an MCP server the gateway calls on the agent's behalf (the conventions' "extension").
            names.TOOL_TYPE: "extension",
            names.MCP_METHOD: "tools/call",
            names.MCP_SERVER: server,
        }
        if call_id is not None:
            attributes[names.TOOL_CALL_ID] = call_id
        if ctx.project_id is not None:
            attributes[names.PROJECT_ID] = ctx.project_id
        if ctx.key is not None:
            attributes[names.KEY_ID] = ctx.key.id
        if ctx.run_id is not None:
            attributes[names.RUN_ID] = ctx.run_id
        if ctx.thread_id is not None:
            attributes[names.CONVERSATION_ID] = ctx.thread_id
        if telemetry.capture_content and arguments is not None:
            attributes[names.TOOL_CALL_ARGUMENTS] = orjson.dumps(arguments, default=str).decode()
        self.span = telemetry.tracer.start_span(
            f"{names.OPERATION_EXECUTE_TOOL} {tool}", kind=SpanKind.INTERNAL, attributes=attributes
        )

    def end(self, error_type: str | None = None, message: str | None = None) -> None:
        """End the span; with ``error_type`` (a tool that answered an error, a timeout, ...) as failed."""
        span = self.span
        if span is None or not span.is_recording():
            return
        if error_type is not None:
            span.set_attribute(names.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, message))
        span.end()
