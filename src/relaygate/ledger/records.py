"""What the ledger writes for a call: its :class:`CallRecord` and the thread messages it added.

A chat client sends the whole conversation with every call, so storing every request's messages would
store the thread again and again. A call adds to its thread only its new turn: the messages after the
last assistant message it sent, then the answer; the first call of a thread (one with no messages stored
yet) adds the whole history it brought, system prompt and earlier turns included. A client that
rewrites earlier history is not followed into it; the thread keeps what was said when it was said.
The answer is kept as the client got it: redacted where output guards redacted it, and for an answer
they refused, their refusal (the error's message) rather than any of its words.

Inline data (``data:`` URLs of images and files) is not copied into the ledger: the message keeps a
marker with the media type and size, so a thread of screenshots does not grow the database by megabytes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from relaygate.settings import DYNAMIC_MODEL, ROUTER_PREFIX
from relaygate.store import CallRecord, MessageRecord

if TYPE_CHECKING:
    from relaygate.answers import AnswerCollector
    from relaygate.context import Attempt, RequestContext

__all__ = ["call_record", "turn_messages"]

DYNAMIC_ROUTER = f"{ROUTER_PREFIX}/{DYNAMIC_MODEL}"
_DATA_URL = re.compile(r"^data:([^;,]*)[^,]*,")


def call_record(
    ctx: RequestContext, *, status: int, endpoint: str, call_id: uuid.UUID, guard_costs: Sequence[float | None]
) -> CallRecord:
    """The call as the ledger keeps it, from everything the layers noted on the context.

    ``guard_costs`` holds the cost of each guard result's model call (``None``: none, or no price).
    """
    started, ended = _wall_times(ctx)
    route = ctx.route
    body = ctx.body or {}
    usage = ctx.total_usage
    user = ctx.user or {}
    # What the client asked for: a virtual or registered name stays that name; the route says what answered.
    requested = body.get("model") if isinstance(body.get("model"), str) else route.requested if route else None
    if requested == DYNAMIC_ROUTER and route is not None:
        requested = route.requested  # router/<name> when the request's router object is named
    first_chunk = ctx.first_chunk_at
    return CallRecord(
        id=call_id,
        project_id=ctx.project_id or "default",
        trace_id=ctx.trace_id,
        started_at=started,
        ended_at=ended,
        thread_id=ctx.thread_id,
        run_id=ctx.run_id,
        label=ctx.label,
        tags=dict(ctx.tags),
        key_id=ctx.key.id if ctx.key is not None else None,
        user_id=_text(user.get("id")),
        user_name=_text(user.get("name")),
        user_tags=[str(tag) for tag in user.get("tags") or ()],
        requested_model=requested if isinstance(requested, str) else "",
        model=route.model if route is not None else "",
        provider=route.provider.name if route is not None else "",
        provider_kind=route.provider.kind if route is not None else "",
        endpoint=endpoint,
        stream=body.get("stream") is True,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        total_tokens=usage.total_tokens if usage else 0,
        cached_tokens=usage.cached_tokens if usage else 0,
        cache_write_tokens=usage.cache_write_tokens if usage else 0,
        reasoning_tokens=usage.reasoning_tokens if usage else 0,
        cost_usd=ctx.cost_usd,
        status=status,
        error=ctx.error,
        latency_ms=((ctx.ended_at or time.perf_counter()) - ctx.started_at) * 1000,
        ttft_ms=(first_chunk - ctx.started_at) * 1000 if first_chunk is not None else None,
        guards=[
            {
                "id": result.id,
                "type": result.type,
                "stage": result.stage,
                "action": result.action,
                "passed": result.passed,
                "reason": result.reason,
                "error": result.error,
                "redactions": result.redactions,
                "model": f"{result.provider}/{result.model}" if result.provider and result.model else None,
                "cost_usd": cost,
            }
            for result, cost in zip(ctx.guard_results, guard_costs, strict=True)
        ],
        attempts=[
            {
                "provider": attempt.provider,
                "model": attempt.model,
                "status": attempt.status,
                "error": attempt.error,
                "duration_ms": round(attempt.duration * 1000, 3),
                **_attempt_usage(attempt),
            }
            for attempt in ctx.attempts
        ],
        overbilled=ctx.overbilled,
        caller_key=ctx.caller_key.fingerprint if ctx.caller_key is not None else None,
    )


def _attempt_usage(attempt: Attempt) -> dict[str, Any]:
    """A tool loop's model call's tokens and cost (each of a loop's calls is one attempt)."""
    out: dict[str, Any] = {}
    if attempt.usage is not None:
        out["prompt_tokens"] = attempt.usage.prompt_tokens
        out["completion_tokens"] = attempt.usage.completion_tokens
    if attempt.cost_usd is not None:
        out["cost_usd"] = attempt.cost_usd
    return out


def turn_messages(ctx: RequestContext, call: CallRecord, answer: AnswerCollector | None) -> list[MessageRecord]:
    """The thread messages this call adds: its new turn of the conversation, then the answer."""
    if ctx.thread_id is None:
        return []
    messages = (ctx.body or {}).get("messages")
    if not isinstance(messages, list):
        return []
    last_assistant = max(
        (i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"), default=-1
    )
    out: list[MessageRecord] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            continue
        out.append(
            MessageRecord(
                project_id=call.project_id,
                thread_id=ctx.thread_id,
                role=message["role"],
                created_at=call.started_at,
                position=len(out),
                content=_without_inline_data(message.get("content")),
                tool_calls=message.get("tool_calls"),
                tool_call_id=_text(message.get("tool_call_id")),
                name=_text(message.get("name")),
                call_id=call.id,
                # Kept by the store only on the thread's first call (see MessageRecord.earlier).
                earlier=index <= last_assistant,
            )
        )
    # A tool loop's calls and their results, between the turn and the answer.
    for message in ctx.loop_messages:
        out.append(
            MessageRecord(
                project_id=call.project_id,
                thread_id=ctx.thread_id,
                role=message["role"],
                created_at=call.started_at,
                position=len(out),
                content=message.get("content"),
                tool_calls=message.get("tool_calls"),
                tool_call_id=_text(message.get("tool_call_id")),
                call_id=call.id,
            )
        )
    if answer is not None and (not answer.empty or ctx.answer_refusal is not None):
        # What the client got: an answer output guards refused is kept as its refusal, none of its words.
        refused = ctx.answer_refusal is not None
        text = ctx.answer_redacted if ctx.answer_redacted is not None else answer.text
        out.append(
            MessageRecord(
                project_id=call.project_id,
                thread_id=ctx.thread_id,
                role="assistant",
                created_at=call.ended_at,
                position=len(out),
                content=ctx.answer_refusal if refused else text if text or not answer.refusal else answer.refusal,
                tool_calls=None if refused else answer.tool_calls or None,
                call_id=call.id,
                model=call.model or None,
                cost_usd=call.cost_usd,
            )
        )
    return out


def _wall_times(ctx: RequestContext) -> tuple[datetime, datetime]:
    # The context keeps monotonic times (for durations) and the wall-clock start, which the limits count the
    # call's budgets from; the end is that start plus the call's duration.
    ended = ctx.ended_at if ctx.ended_at is not None else time.perf_counter()
    return (
        datetime.fromtimestamp(ctx.started_wall, UTC),
        datetime.fromtimestamp(ctx.started_wall + (ended - ctx.started_at), UTC),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _without_inline_data(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    return [_part_without_data(part) for part in content]


def _part_without_data(part: Any) -> Any:
    if not isinstance(part, dict):
        return part
    for key, field in (("image_url", "url"), ("file", "file_data")):
        inner = part.get(key)
        value = inner.get(field) if isinstance(inner, dict) else None
        if isinstance(value, str) and (match := _DATA_URL.match(value)):
            kept = f"data:{match.group(1)};omitted,{len(value) - match.end()} bytes"
            return {**part, key: {**inner, field: kept}}  # type: ignore[dict-item]
    return part
