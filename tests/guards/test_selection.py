"""Which guards a request gets (project defaults, extra.guards, overrides), how refusals look, and traces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.guards.harness import chat, guarded

pytestmark = pytest.mark.anyio

GUARDS: dict[str, Any] = {
    "short": {"type": "word_count", "stage": "input", "action": "block", "parameters": {"max_words": 3}},
    "no_pii": {"type": "pii", "stage": "input", "action": "redact"},
    "no_secrets_out": {
        "type": "regex", "stage": "output", "action": "block", "parameters": {"patterns": ["sk-[A-Za-z0-9]{8,}"]},
    },
}  # fmt: skip


async def test_an_unknown_guard_is_a_400_naming_it(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post("/v1/chat/completions", json=chat("hi", extra={"guards": ["short", "nope"]}))
        assert response.status_code == 400
        assert response.json()["error"] == {
            "message": "Unknown guard in extra.guards: 'nope'.",
            "type": "invalid_request_error",
            "param": "extra.guards",
            "code": "guard_not_found",
        }
        several = await g.client.post("/v1/chat/completions", json=chat("hi", extra={"guards": ["a", {"id": "b"}]}))
        assert several.json()["error"]["message"] == "Unknown guards in extra.guards: 'a', 'b'."
        assert fake_upstream.requests == []


@pytest.mark.parametrize("guards", ["short", [1], [{"name": "short"}], [{"id": "short", "parameters": [1]}]])
async def test_a_malformed_extra_guards_is_a_400(upstream_url: str, fake_upstream: FakeOpenAI, guards: Any) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post("/v1/chat/completions", json=chat("hi", extra={"guards": guards}))
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "extra.guards"


async def test_a_request_may_override_the_parameters_of_the_guards_it_names(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        longer = {"id": "short", "parameters": {"max_words": 10}}
        response = await g.client.post(
            "/v1/chat/completions", json=chat("one two three four five", extra={"guards": [longer]})
        )
        assert response.status_code == 200
        again = await g.client.post(
            "/v1/chat/completions", json=chat("one two three four five", extra={"guards": ["short"]})
        )
        assert again.status_code == 400

        bad = {"id": "short", "parameters": {"max_words": "many"}}
        invalid = await g.client.post("/v1/chat/completions", json=chat("hi", extra={"guards": [bad]}))
        assert invalid.status_code == 400
        error = invalid.json()["error"]
        assert error["param"] == "extra.guards" and error["code"] == "invalid_value"
        assert error["message"].startswith(
            "Invalid parameters for guard 'short' in extra.guards: parameters.max_words:"
        )


async def test_a_project_default_guard_cannot_be_loosened_by_a_request(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, GUARDS, project_guards=["short"]) as g:
        refused = await g.client.post("/v1/chat/completions", json=chat("one two three four"))
        assert refused.status_code == 400
        loosen = {"id": "short", "parameters": {"max_words": 100}}
        response = await g.client.post(
            "/v1/chat/completions", json=chat("one two three four", extra={"guards": [loosen]})
        )
        assert response.status_code == 400
        assert "cannot change its parameters" in response.json()["error"]["message"]
        # Naming a default guard again changes nothing: it runs once (after the redacting guard, as they go first).
        named = await g.client.post("/v1/chat/completions", json=chat("one two", extra={"guards": ["short", "no_pii"]}))
        assert named.status_code == 200
        assert [result.id for result in g.ctx.guard_results] == ["no_pii", "short"]


async def test_violations_answer_446_when_configured_for_langdb(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    async with guarded(upstream_url, GUARDS, violation_status=446) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=chat("one two three four", extra={"guards": ["short"]})
        )
        assert response.status_code == 446
        assert response.json()["error"]["code"] == "guard_violation"
        # Unknown ids remain plain bad requests.
        unknown = await g.client.post("/v1/chat/completions", json=chat("hi", extra={"guards": ["nope"]}))
        assert unknown.status_code == 400


async def test_guard_results_go_on_the_requests_span_without_what_was_found(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        body = chat(
            "mail me at ann@example.com, key sk-abcdefgh12345678", extra={"guards": ["no_pii", "no_secrets_out"]}
        )
        response = await g.client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400
        span = g.server_span()
        attributes = dict(span.attributes or {})
        assert attributes["relaygate.guard.ids"] == ("no_pii", "no_secrets_out")
        assert attributes["relaygate.guard.failed_ids"] == ("no_pii", "no_secrets_out")
        assert "relaygate.guard.error_ids" not in attributes
        assert attributes["http.response.status_code"] == 400
        events = [dict(event.attributes or {}) for event in span.events if event.name == "relaygate.guard"]
        assert events[0]["relaygate.guard.id"] == "no_pii"
        assert events[0]["relaygate.guard.stage"] == "input" and events[0]["relaygate.guard.action"] == "redact"
        assert events[0]["relaygate.guard.redactions"] == 1 and events[0]["relaygate.guard.passed"] is False
        assert events[1]["relaygate.guard.reason"] == "matches pattern #1 of 1"
        everything = repr(span.attributes) + repr([event.attributes for event in span.events])
        assert "ann@example.com" not in everything and "sk-abcdefgh" not in everything


async def test_requests_without_guards_are_not_touched(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post("/v1/chat/completions", json=chat("sk-abcdefgh12345678 me@x.io"))
        assert response.status_code == 200
        assert g.ctx.guard_results == [] and g.ctx.output_filter is None
        assert "relaygate.guard.ids" not in dict(g.server_span().attributes or {})
        # Other routes and methods pass straight through.
        assert (await g.client.get("/v1/models")).status_code == 200
        assert (await g.client.get("/v1/chat/completions")).status_code == 405
        bad_json = await g.client.post(
            "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
