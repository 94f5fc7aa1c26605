"""Calls and their messages packed as plain tuples for the recorder's pipe, and rebuilt as they were."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from relaygate.recorder.records import pack_call, unpack_call
from relaygate.store import CallRecord, MessageRecord

NOW = datetime(2026, 12, 4, 13, 0, 0, 123456, tzinfo=UTC)


def _call() -> CallRecord:
    return CallRecord(
        project_id="proj-a",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        started_at=NOW,
        ended_at=NOW + timedelta(milliseconds=12, microseconds=7),
        thread_id="thread-1",
        run_id="run-1",
        label="l",
        tags={"team": "a"},
        key_id="key_1",
        user_id="u1",
        user_name="Ada",
        user_tags=["x", "y"],
        requested_model="upstream/gpt-4o",
        model="gpt-4o",
        provider="upstream",
        provider_kind="openai",
        stream=True,
        prompt_tokens=12,
        completion_tokens=34,
        total_tokens=46,
        cached_tokens=2,
        reasoning_tokens=3,
        cost_usd=0.000123,
        status=502,
        error="upstream_error",
        latency_ms=12.5,
        ttft_ms=3.25,
        guards=[{"id": "pii", "passed": True, "cost_usd": None}],
        attempts=[{"provider": "upstream", "model": "gpt-4o", "status": 502, "duration_ms": 11.0}],
        overbilled=True,
        caller_key="abcd1234",
    )


def test_a_call_and_its_messages_cross_as_plain_values_and_come_back_equal() -> None:
    call = _call()
    messages = (
        MessageRecord(
            project_id="proj-a", thread_id="thread-1", role="user", created_at=NOW, content=[{"type": "text"}],
            call_id=call.id, earlier=True,
        ),
        MessageRecord(
            project_id="proj-a", thread_id="thread-1", role="assistant", created_at=NOW, position=1,
            tool_calls=[{"id": "t1"}], call_id=call.id, model="gpt-4o", cost_usd=0.000123,
        ),
        MessageRecord(project_id="proj-a", thread_id="thread-1", role="tool", created_at=NOW, tool_call_id="t1"),
    )  # fmt: skip
    packed = pickle.loads(pickle.dumps(pack_call(call, messages), protocol=pickle.HIGHEST_PROTOCOL))
    # Plain values only: nothing pickles through a class of relaygate's.
    assert b"relaygate" not in pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL)
    again, again_messages = unpack_call(packed)
    assert again == call and again.id == call.id and again.started_at.tzinfo is UTC
    assert again_messages == messages
    assert [m.earlier for m in again_messages] == [True, False, False]
    assert again_messages[2].call_id is None
    assert unpack_call(pack_call(call)) == (call, ())
