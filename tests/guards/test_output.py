"""Output guards on whole (non-streamed) answers, through the whole stack."""

from __future__ import annotations

import orjson
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.guards.harness import chat, guarded

pytestmark = pytest.mark.anyio

SECRET = "sk-abcdefgh12345678"
NO_SECRETS = {"patterns": ["sk-[A-Za-z0-9]{8,}"]}
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name"],
}


async def test_regex_blocks_an_answer_holding_a_secret(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    guards = {"no_secrets_out": {"type": "regex", "stage": "output", "action": "block", "parameters": NO_SECRETS}}
    async with guarded(upstream_url, guards) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=chat(f"the key is {SECRET}", extra={"guards": ["no_secrets_out"]})
        )
        assert response.status_code == 400
        assert response.json()["error"] == {
            "message": "Guard 'no_secrets_out' blocked the answer: matches pattern #1 of 1.",
            "type": "invalid_request_error",
            "param": None,
            "code": "guard_violation",
        }
        assert SECRET not in response.text
        # The upstream did answer (and its usage counts); the client got the refusal.
        assert fake_upstream.last().body["messages"][0]["content"] == f"the key is {SECRET}"
        assert g.ctx.usage is not None and g.ctx.usage.total_tokens == 16
        assert g.ctx.status == 400 and g.ctx.error == "guard_violation"


async def test_pii_redaction_rewrites_the_answer_and_its_content_length(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    guards = {"pii_out": {"type": "pii", "stage": "output", "action": "redact"}}
    async with guarded(upstream_url, guards) as g:
        prompt = "write to jane.doe@example.com or call (415) 555-0132"
        response = await g.client.post("/v1/chat/completions", json=chat(prompt, extra={"guards": ["pii_out"]}))
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "write to [EMAIL] or call [PHONE]"
        assert int(response.headers["content-length"]) == len(response.content)
        assert response.headers["x-provider-name"] == "upstream"
        assert fake_upstream.last().body["messages"][0]["content"] == prompt
        assert g.results()["pii_out"].redactions == 2


async def test_an_answer_without_findings_goes_out_byte_for_byte(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    guards = {"pii_out": {"type": "pii", "stage": "output", "action": "redact"}}
    async with guarded(upstream_url, guards) as g:
        plain = await g.client.post("/v1/chat/completions", json=chat("nothing personal"))
        guarded_answer = await g.client.post(
            "/v1/chat/completions", json=chat("nothing personal", extra={"guards": ["pii_out"]})
        )
        assert guarded_answer.content == plain.content
        assert g.results()["pii_out"].passed


async def test_word_count_blocks_short_answers_and_observes(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    guards = {
        "wordy": {"type": "word_count", "stage": "output", "action": "block", "parameters": {"min_words": 3}},
        "counted": {"type": "word_count", "stage": "output", "action": "observe", "parameters": {"max_words": 1}},
    }
    async with guarded(upstream_url, guards) as g:
        blocked = await g.client.post("/v1/chat/completions", json=chat("too short", extra={"guards": ["wordy"]}))
        assert blocked.status_code == 400
        assert blocked.json()["error"]["message"] == "Guard 'wordy' blocked the answer: 2 words, fewer than 3."
        observed = await g.client.post("/v1/chat/completions", json=chat("too short", extra={"guards": ["counted"]}))
        assert observed.status_code == 200
        assert observed.json()["choices"][0]["message"]["content"] == "too short"
        assert g.results()["counted"].reason == "2 words, more than 1"


async def test_json_schema_blocks_an_answer_that_does_not_validate(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    guards = {
        "schema": {"type": "json_schema", "stage": "output", "action": "block", "parameters": {"schema": SCHEMA}},
        "schema_seen": {
            "type": "json_schema",
            "stage": "output",
            "action": "observe",
            "parameters": {"schema": SCHEMA},
        },
    }
    async with guarded(upstream_url, guards) as g:
        valid = orjson.dumps({"name": "Ada", "age": 36}).decode()
        ok = await g.client.post("/v1/chat/completions", json=chat(valid, extra={"guards": ["schema"]}))
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == valid
        fenced = await g.client.post(
            "/v1/chat/completions", json=chat(f"```json\n{valid}\n```", extra={"guards": ["schema"]})
        )
        assert fenced.status_code == 200

        wrong = orjson.dumps({"age": -4}).decode()
        blocked = await g.client.post("/v1/chat/completions", json=chat(wrong, extra={"guards": ["schema"]}))
        assert blocked.status_code == 400
        message = blocked.json()["error"]["message"]
        assert message.startswith("Guard 'schema' blocked the answer: the answer does not match the schema (")
        assert "$: fails 'required'" in message and "$.age: fails 'minimum'" in message and "-4" not in message
        prose = await g.client.post(
            "/v1/chat/completions", json=chat("Sure! Here it is.", extra={"guards": ["schema"]})
        )
        assert prose.json()["error"]["message"] == "Guard 'schema' blocked the answer: the answer is not JSON."

        observed = await g.client.post("/v1/chat/completions", json=chat(wrong, extra={"guards": ["schema_seen"]}))
        assert observed.status_code == 200
        assert not g.results()["schema_seen"].passed


async def test_output_guards_pass_upstream_errors_through_untouched(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    guards = {"pii_out": {"type": "pii", "stage": "output", "action": "redact"}}
    async with guarded(upstream_url, guards) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=chat("hi", model="upstream/status-429", extra={"guards": ["pii_out"]})
        )
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert g.ctx.guard_results == []
