"""The tool loop: a chat request with ``mcp_servers``, run as model calls and MCP tool calls until an answer.

:class:`ToolLoop` is a runner around the :class:`~relaygate.fallback.Fallback`. It adds the servers' tools to
the request's (:mod:`relaygate.mcp.request`) and calls the model; while the model asks for MCP tools, it calls
them (in parallel, :mod:`relaygate.mcp.calls`), appends the calls and their results, and calls the model again.
It stops when the model answers without an MCP tool, or calls one of the caller's own tools (that answer goes
to the caller as usual, without the MCP calls beside them), or after ``mcp.max_iterations`` model calls: the
answer then says so, with ``finish_reason`` ``"max_iterations"``.

Everything around a single call holds for each of the loop's: each model call is an attempt of the fallback
(retried, routed, its own CLIENT span); the ledger prices each, and the request costs their sum (the usage
the client sees, and the ledger records, is their sum too); the limits settle each call and reserve the next
before it runs, so a loop cannot spend past a budget; the input guards judge the tool results before the
model reads them, the output guards the final answer; the thread keeps the calls and results. A client that
leaves stops the loop.

Streamed, the text of every model call reaches the client as the model writes it, and the loop's steps are
SSE comments (``: relaygate: calling calc__add``), which SDKs skip: the first byte is not held until the loop
ends (:mod:`relaygate.mcp.streaming`).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from starlette.types import Message, Receive, Send

from relaygate.errors import (
    ClientDisconnected,
    GatewayError,
    InvalidRequestError,
    ServiceUnavailableError,
    sse_error_frame,
)
from relaygate.mcp.calls import ToolCall, run_calls
from relaygate.mcp.errors import McpFailure
from relaygate.mcp.pool import McpPool
from relaygate.mcp.request import PARAM, ToolCatalog, requested_servers, tool_catalog
from relaygate.mcp.streaming import StreamStep, progress_comment
from relaygate.route_headers import route_headers
from relaygate.settings.mcp import McpSettings
from relaygate.sse import DONE, frame

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.fallback import Fallback
    from relaygate.guards import Guard, Guards
    from relaygate.limits.limiter import Limiter
    from relaygate.routing import Plan
    from relaygate.telemetry import Telemetry

__all__ = ["MAX_ITERATIONS_REASON", "Prepared", "ToolLoop"]

MAX_ITERATIONS_REASON = "max_iterations"
SSE_START: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(slots=True)
class Prepared:
    """A request's loop, ready to run: the MCP tools offered, and the body the model gets."""

    catalog: ToolCatalog
    body: dict[str, Any]
    input_guards: tuple[Guard, ...]


class ToolLoop:
    """See the module docstring. ``guards`` and ``limiter`` are the gateway's (``None``: none configured)."""

    def __init__(
        self,
        *,
        pool: McpPool,
        options: McpSettings,
        fallback: Fallback,
        telemetry: Telemetry | None = None,
        guards: Guards | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.pool = pool
        self.options = options
        self.fallback = fallback
        self.telemetry = telemetry
        self.guards = guards
        self.limiter = limiter

    # --- before the first model call -----------------------------------------------------------------

    async def prepare(self, ctx: RequestContext, body: dict[str, Any]) -> Prepared | None:
        """The request's loop, or ``None`` when it names no MCP server; raises its refusal (400, 403)."""
        value = body.get(PARAM)
        if value is None or value == []:
            return None
        servers = requested_servers(value, self.pool, self.options, ctx.project_id)
        if not servers:
            return None
        if isinstance(body.get("n"), int) and body["n"] != 1:
            raise InvalidRequestError("mcp_servers needs n = 1: a tool loop follows one answer.", param="n")
        listed = await self._tools(servers)
        own: list[Any] = body["tools"] if isinstance(body.get("tools"), list) else []
        taken = {
            tool["function"]["name"]
            for tool in own
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and "name" in tool["function"]
        }
        catalog = tool_catalog(listed, taken)
        sent = {key: value for key, value in body.items() if key != PARAM}
        if catalog.definitions:
            sent["tools"] = [*own, *catalog.definitions]
        # The loop reads and writes the canonical answer: no dialect's native pass-through.
        ctx.canonical_only = True
        requested = (body.get("extra") or {}).get("guards") if isinstance(body.get("extra"), dict) else None
        inputs = self.guards.select(ctx.project_id, requested).input if self.guards is not None else ()
        return Prepared(catalog, sent, inputs)

    async def _tools(self, servers: list[str]) -> list[tuple[str, list[Any]]]:
        listed: dict[str, list[Any]] = {}
        failures: list[McpFailure] = []

        async def one(server: str) -> None:
            try:
                listed[server] = await self.pool.list_tools(server, stale_ok=True)
            except McpFailure as failure:
                failures.append(failure)

        async with anyio.create_task_group() as group:
            for server in servers:
                group.start_soon(one, server)
        if failures:
            raise ServiceUnavailableError(
                f"{failures[0].message}; its tools cannot be offered to the model.", code="mcp_server_unavailable"
            )
        return [(server, listed[server]) for server in servers]

    # --- whole answers ---------------------------------------------------------------------------------

    async def whole(self, receive: Receive, ctx: RequestContext, plan: Plan, prepared: Prepared) -> bytes:
        """The final answer's body; a client that leaves cancels the loop (raises ClientDisconnected)."""
        with anyio.CancelScope() as scope:
            watcher = asyncio.ensure_future(receive())
            watcher.add_done_callback(functools.partial(_on_disconnect, scope=scope, ctx=ctx))
            try:
                answer = await self._whole(ctx, plan, prepared)
            finally:
                watcher.cancel()
        if scope.cancelled_caught:
            raise ClientDisconnected()
        return answer

    async def _whole(self, ctx: RequestContext, plan: Plan, prepared: Prepared) -> bytes:
        body = prepared.body
        limit = self.options.max_iterations
        for iteration in range(1, limit + 1):
            if iteration > 1:
                await self._reserve(ctx, body)
            _, raw = await self.fallback.whole(ctx, plan, "chat", body)
            answer = orjson.loads(raw)
            choices = answer.get("choices") or [{}]
            message = choices[0].get("message") or {}
            calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
            ours = [call for call in calls if (call.get("function") or {}).get("name") in prepared.catalog.targets]
            if not ours:
                return self._final(ctx, answer, raw)
            if len(ours) < len(calls):
                # The caller's own tools: theirs to run, without the MCP calls beside them.
                message["tool_calls"] = [call for call in calls if call not in ours]
                return self._final(ctx, answer, None)
            if iteration == limit:
                choices[0]["message"] = {"role": "assistant", "content": _stopped(limit, ours)}
                choices[0]["finish_reason"] = MAX_ITERATIONS_REASON
                return self._final(ctx, answer, None)
            steps = [_step(call, prepared.catalog) for call in ours]
            await self._advance(ctx, prepared, {**message, "tool_calls": ours}, steps)
            body = prepared.body = {**body, "messages": [*body["messages"], *ctx.loop_messages[-len(steps) - 1 :]]}
        raise AssertionError("unreachable")  # pragma: no cover

    def _final(self, ctx: RequestContext, answer: dict[str, Any], raw: bytes | None) -> bytes:
        if ctx.loop_usage is None:
            return raw if raw is not None else orjson.dumps(answer)
        answer["usage"] = self._usage(ctx, answer.get("usage"))
        return orjson.dumps(answer)

    @staticmethod
    def _usage(ctx: RequestContext, last: Any) -> dict[str, Any] | None:
        usage = ctx.total_usage
        if usage is None:
            return last if isinstance(last, dict) else None
        out: dict[str, Any] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        }
        if usage.cached_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
        if usage.reasoning_tokens:
            out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
        if ctx.cost_usd is not None:
            out["cost"] = ctx.cost_usd
        return out

    # --- between model calls ---------------------------------------------------------------------------

    async def _advance(
        self, ctx: RequestContext, prepared: Prepared, message: dict[str, Any], steps: list[ToolCall]
    ) -> None:
        """The model call asked for MCP tools: settle and close it, make the calls, note them and their
        results (the thread keeps them)."""
        if self.limiter is not None and ctx.admission is not None:
            with anyio.CancelScope(shield=True):
                await self.limiter.settle(ctx.admission, ctx, model_only=True)
            ctx.admission = None
        ctx.next_model_call()
        await run_calls(
            steps,
            ctx,
            pool=self.pool,
            timeout=self.options.tool_timeout,
            telemetry=self.telemetry,
            guards=self.guards,
            input_guards=prepared.input_guards,
        )
        assistant = {"role": "assistant", "content": message.get("content"), "tool_calls": message["tool_calls"]}
        ctx.loop_messages += [assistant, *(step.message() for step in steps)]

    async def _reserve(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        """The limits' reservation of the next model call, before it runs (raises their refusal)."""
        if self.limiter is not None:
            ctx.admission = await self.limiter.admit(ctx, "chat", body)

    # --- streams -----------------------------------------------------------------------------------------

    async def stream(
        self, receive: Receive, send: Send, ctx: RequestContext, plan: Plan, prepared: Prepared, *, usage_chunk: bool
    ) -> None:
        """Stream the loop (see the module docstring); a client that leaves cancels it."""
        started = False

        async def send_body(data: bytes) -> None:
            nonlocal started
            if not data:
                return
            if not started:
                started = True
                await send({"type": "http.response.start", "status": 200, "headers": [*SSE_START, *_routed(ctx)]})
            await send({"type": "http.response.body", "body": data, "more_body": True})

        with anyio.CancelScope() as scope:
            watcher = asyncio.ensure_future(receive())
            watcher.add_done_callback(functools.partial(_on_disconnect, scope=scope, ctx=ctx))
            try:
                await self._stream(ctx, plan, prepared, send_body, usage_chunk=usage_chunk)
            except GatewayError as error:
                if not started:
                    raise
                ctx.scrub(error)
                ctx.error = error.code or error.type
                await send_body(sse_error_frame(error))
            finally:
                watcher.cancel()
        if scope.cancelled_caught:
            raise ClientDisconnected()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream(
        self, ctx: RequestContext, plan: Plan, prepared: Prepared, send_body: Any, *, usage_chunk: bool
    ) -> None:
        body = prepared.body
        limit = self.options.max_iterations
        for iteration in range(1, limit + 1):
            if iteration > 1:
                await self._reserve(ctx, body)
            step = StreamStep(prepared.catalog.targets, first=iteration == 1)
            opened = await self.fallback.stream(ctx, plan, body, usage_chunk=True)
            try:
                await send_body(step.feed(opened.first))
                async for data in opened.frames:
                    await send_body(step.feed(data))
            finally:
                await self.fallback.finish(ctx, opened)
            if step.failed:
                return  # the error event was the stream's last
            ours = step.mcp_calls
            if not ours or step.own_calls:
                await send_body(step.finish(usage=self._usage(ctx, None), usage_chunk=usage_chunk))
                return
            if iteration == limit:
                await send_body(self._stop_frames(ctx, step, limit, usage_chunk))
                return
            steps = [
                ToolCall(call["id"], call["name"], *prepared.catalog.targets[call["name"]], call["arguments"])
                for call in ours
            ]
            await send_body(progress_comment("calling " + ", ".join(call["name"] for call in ours)))
            tool_calls = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
                for call in ours
            ]
            await self._advance(ctx, prepared, {"content": None, "tool_calls": tool_calls}, steps)
            await send_body(progress_comment(", ".join(_outcome(step) for step in steps)))
            body = prepared.body = {**body, "messages": [*body["messages"], *ctx.loop_messages[-len(steps) - 1 :]]}

    def _stop_frames(self, ctx: RequestContext, step: StreamStep, limit: int, usage_chunk: bool) -> bytes:
        base = step.held[0] if step.held else {"object": "chat.completion.chunk", "choices": []}
        chunk = {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": _stopped(limit, step.mcp_calls)},
                    "finish_reason": MAX_ITERATIONS_REASON,
                }
            ],
        }
        out = frame(orjson.dumps(chunk))
        if usage_chunk and step.usage is not None:
            out += frame(orjson.dumps({**step.usage, "usage": self._usage(ctx, None)}))
        return out + frame(DONE)


def _step(call: dict[str, Any], catalog: ToolCatalog) -> ToolCall:
    function = call.get("function") or {}
    name = function.get("name", "")
    server, tool = catalog.targets[name]
    arguments = function.get("arguments")
    return ToolCall(str(call.get("id") or ""), name, server, tool, arguments if isinstance(arguments, str) else "")


def _stopped(limit: int, calls: list[dict[str, Any]]) -> str:
    names = sorted({(call.get("function") or {}).get("name") or call.get("name") or "?" for call in calls})
    return (
        f"The tool loop stopped after {limit} model calls (mcp.max_iterations) while the model still asked for "
        f"tools: {', '.join(names)}. No answer was reached; ask again with a narrower question or raise "
        "mcp.max_iterations."
    )


def _outcome(step: ToolCall) -> str:
    return f"{step.name} {'failed' if step.is_error else 'done'}"


def _routed(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    return route_headers(ctx) if ctx.route is not None else []


def _on_disconnect(watcher: asyncio.Future[Message], *, scope: anyio.CancelScope, ctx: RequestContext) -> None:
    if watcher.cancelled() or watcher.exception() is not None:
        return
    if watcher.result()["type"] == "http.disconnect":
        ctx.error = "client_disconnected"
        scope.cancel()
