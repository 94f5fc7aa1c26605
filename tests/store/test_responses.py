"""Stored responses of the Responses API, on both backends: per project, kept as sent, deleted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relaygate.store import Store, StoredResponse

pytestmark = pytest.mark.anyio

TEXT = {"type": "input_text", "text": "héllo \x00 🎉"}
INPUT = [{"id": "msg_1", "type": "message", "role": "user", "content": [TEXT]}]
RESPONSE = {"id": "resp_1", "object": "response", "status": "completed", "output": [], "z": 1, "a": {"b": None}}


def stored(response_id: str = "resp_1", project: str = "proj-a") -> StoredResponse:
    return StoredResponse(
        id=response_id,
        project_id=project,
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        model="gpt-4o",
        previous_response_id="resp_0",
        input_items=INPUT,
        response={**RESPONSE, "id": response_id},
    )


async def test_a_response_is_kept_as_sent_in_its_project(store: Store) -> None:
    await store.save_response(stored())
    got = await store.get_response("proj-a", "resp_1")
    assert got == stored()
    assert got is not None and list(got.response) == list(RESPONSE)  # key order kept
    assert await store.get_response("proj-b", "resp_1") is None
    assert await store.get_response("proj-a", "resp_2") is None


async def test_saving_again_keeps_the_first_and_delete_is_per_project(store: Store) -> None:
    await store.save_response(stored())
    again = stored()
    await store.save_response(StoredResponse(**{**{f: getattr(again, f) for f in again.__slots__}, "model": "other"}))
    kept = await store.get_response("proj-a", "resp_1")
    assert kept is not None and kept.model == "gpt-4o"
    assert not await store.delete_response("proj-b", "resp_1")
    assert await store.get_response("proj-a", "resp_1") is not None
    assert await store.delete_response("proj-a", "resp_1")
    assert await store.get_response("proj-a", "resp_1") is None
    assert not await store.delete_response("proj-a", "resp_1")
