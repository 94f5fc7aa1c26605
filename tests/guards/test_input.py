"""Input guards through the whole stack: what reached the fake upstream, and what reached the client."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.fakes.openai_server import REPLY, FakeOpenAI
from tests.guards.harness import chat, guarded

pytestmark = pytest.mark.anyio

SECRET = "sk-abcdefgh12345678"


async def test_word_count_blocks_a_long_prompt_before_it_goes_upstream(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    guards = {"short": {"type": "word_count", "stage": "input", "action": "block", "parameters": {"max_words": 5}}}
    async with guarded(upstream_url, guards) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=chat("one two three four five six", extra={"guards": ["short"]})
        )
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "guard_violation" and error["type"] == "invalid_request_error"
        assert error["message"] == "Guard 'short' blocked the request: 6 words, more than 5."
        assert fake_upstream.requests == []
        assert g.ctx.status == 400 and g.ctx.error == "guard_violation"

        ok = await g.client.post("/v1/chat/completions", json=chat("one two three", extra={"guards": ["short"]}))
        assert ok.status_code == 200
        assert g.results()["short"].passed


async def test_input_guards_count_every_message_and_every_text_part(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    guards = {"short": {"type": "word_count", "stage": "input", "action": "block", "parameters": {"max_words": 6}}}
    body = {
        "model": "upstream/echo",
        "messages": [
            {"role": "system", "content": "one two three"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "four five"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
            {"role": "assistant", "content": "six"},
            {"role": "user", "content": "seven"},
        ],
        "extra": {"guards": ["short"]},
    }
    async with guarded(upstream_url, guards) as g:
        response = await g.client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400
        assert "7 words" in response.json()["error"]["message"]


async def test_pii_redaction_rewrites_every_message_before_it_leaves(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    guards = {"no_pii": {"type": "pii", "stage": "input", "action": "redact"}}
    body = {
        "model": "upstream/gpt-4o",
        "messages": [
            {"role": "system", "content": "The operator is ops@example.com."},
            {"role": "user", "content": [
                {"type": "text", "text": "My card is 4111 1111 1111 1111 and my IBAN DE89 3704 0044 0532 0130 00."},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]},
            {"role": "user", "content": "Call +44 20 7946 0958 from 10.0.0.12, SSN 123-45-6789."},
        ],
        "extra": {"guards": ["no_pii"]},
    }  # fmt: skip
    async with guarded(upstream_url, guards) as g:
        response = await g.client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == REPLY
        sent = fake_upstream.last("/chat/completions").body["messages"]
        assert sent[0]["content"] == "The operator is [EMAIL]."
        assert sent[1]["content"][0]["text"] == "My card is [CARD] and my IBAN [IBAN]."
        assert sent[1]["content"][1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        assert sent[2]["content"] == "Call [PHONE] from [IP], SSN [SSN]."
        result = g.results()["no_pii"]
        assert not result.passed and result.redactions == 6 and result.action == "redact"
        assert result.reason is not None and "e-mail address" in result.reason and "@" not in result.reason


async def test_a_project_default_guard_applies_to_every_call_of_the_project(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    guards = {"no_pii": {"type": "pii", "stage": "input", "action": "redact"}}
    async with guarded(upstream_url, guards, project_guards=["no_pii"]) as g:
        response = await g.client.post("/v1/chat/completions", json=chat("write to bob@example.org"))
        assert response.status_code == 200
        assert fake_upstream.last().body["messages"][0]["content"] == "write to [EMAIL]"
        assert response.json()["choices"][0]["message"]["content"] == "write to [EMAIL]"


async def test_regex_blocks_redacts_or_observes_a_secret_in_the_prompt(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    patterns = {"patterns": ["sk-[A-Za-z0-9]{8,}"]}
    guards = {
        "block": {"type": "regex", "stage": "input", "action": "block", "parameters": patterns},
        "redact": {
            "type": "regex",
            "stage": "input",
            "action": "redact",
            "parameters": {**patterns, "replacement": "[KEY]"},
        },
        "watch": {"type": "regex", "stage": "input", "action": "observe", "parameters": patterns},
    }
    prompt = f"use {SECRET} please"
    async with guarded(upstream_url, guards) as g:
        blocked = await g.client.post("/v1/chat/completions", json=chat(prompt, extra={"guards": ["block"]}))
        assert blocked.status_code == 400
        assert blocked.json()["error"]["message"] == "Guard 'block' blocked the request: matches pattern #1 of 1."
        assert SECRET not in blocked.text
        assert fake_upstream.requests == []

        redacted = await g.client.post("/v1/chat/completions", json=chat(prompt, extra={"guards": ["redact"]}))
        assert redacted.status_code == 200
        assert fake_upstream.last().body["messages"][0]["content"] == "use [KEY] please"

        observed = await g.client.post("/v1/chat/completions", json=chat(prompt, extra={"guards": ["watch"]}))
        assert observed.status_code == 200
        assert fake_upstream.last().body["messages"][0]["content"] == prompt
        result = g.results()["watch"]
        assert not result.passed and result.action == "observe" and result.reason == "matches pattern #1 of 1"


async def test_pii_blocks_or_observes_personal_data_in_the_prompt(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    guards = {
        "block": {"type": "pii", "stage": "input", "action": "block", "parameters": {"entities": ["payment_card"]}},
        "watch": {"type": "pii", "stage": "input", "action": "observe"},
    }
    async with guarded(upstream_url, guards) as g:
        prompt = "charge 4111-1111-1111-1111 today"
        blocked = await g.client.post("/v1/chat/completions", json=chat(prompt, extra={"guards": ["block"]}))
        assert blocked.status_code == 400
        assert blocked.json()["error"]["message"] == "Guard 'block' blocked the request: found payment card number."
        assert "4111" not in blocked.text and fake_upstream.requests == []
        # Not a card (the Luhn check fails): it goes through.
        fine = await g.client.post(
            "/v1/chat/completions", json=chat("order 4111-1111-1111-1112", extra={"guards": ["block"]})
        )
        assert fine.status_code == 200

        observed = await g.client.post("/v1/chat/completions", json=chat("mail a@b.io", extra={"guards": ["watch"]}))
        assert observed.status_code == 200
        assert fake_upstream.last().body["messages"][0]["content"] == "mail a@b.io"
        assert g.results()["watch"].reason == "found e-mail address"


async def test_input_guards_check_embedding_inputs_and_image_prompts(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    guards = {"no_pii": {"type": "pii", "stage": "input", "action": "redact"}}
    async with guarded(upstream_url, guards, project_guards=["no_pii"]) as g:
        embedded = await g.client.post(
            "/v1/embeddings", json={"model": "upstream/text-embedding-3-small", "input": ["hi x@y.com", "plain"]}
        )
        assert embedded.status_code == 200
        assert fake_upstream.last("/embeddings").body["input"] == ["hi [EMAIL]", "plain"]
        image = await g.client.post(
            "/v1/images/generations", json={"model": "upstream/gpt-image-1", "prompt": "a sign saying x@y.com"}
        )
        assert image.status_code == 200
        assert fake_upstream.last("/images/generations").body["prompt"] == "a sign saying [EMAIL]"


PII_IN = {
    "no_pii": {"type": "pii", "stage": "input", "action": "block"},
    "mask_pii": {"type": "pii", "stage": "input", "action": "redact"},
    "no_keys": {
        "type": "regex", "stage": "input", "action": "block", "parameters": {"patterns": ["sk-[A-Za-z0-9]{8,}"]},
    },
    "mask_keys": {
        "type": "regex", "stage": "input", "action": "redact",
        "parameters": {"patterns": ["sk-[A-Za-z0-9]{8,}"], "replacement": "[KEY]"},
    },
}  # fmt: skip


def split_card_body(guard: str) -> dict[str, Any]:
    return {
        "model": "upstream/echo",
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "card 4111 1111"}, {"type": "text", "text": " 1111 1111"},
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "mine is 4242 4242"},
                {"type": "image_url", "image_url": {"url": "https://example.com/card.png"}},
                {"type": "text", "text": "4242 4242, ok?"},
            ]},
        ],
        "extra": {"guards": [guard]},
    }  # fmt: skip


async def test_a_card_number_split_across_text_parts_is_one_card_number(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, PII_IN) as g:
        blocked = await g.client.post("/v1/chat/completions", json=split_card_body("no_pii"))
        assert blocked.status_code == 400
        assert blocked.json()["error"]["message"] == "Guard 'no_pii' blocked the request: found payment card number."
        assert fake_upstream.requests == []

        redacted = await g.client.post("/v1/chat/completions", json=split_card_body("mask_pii"))
        assert redacted.status_code == 200
        sent = fake_upstream.last().body["messages"]
        # Redacted in place: the placeholder where the number starts, the rest of it cut from the next part.
        assert sent[0]["content"] == [{"type": "text", "text": "card [CARD]"}, {"type": "text", "text": ""}]
        assert sent[1]["content"] == [
            {"type": "text", "text": "mine is [CARD]"},
            {"type": "image_url", "image_url": {"url": "https://example.com/card.png"}},
            {"type": "text", "text": ", ok?"},
        ]
        assert "[CARD]" in redacted.text and "4242" not in redacted.text
        assert g.results()["mask_pii"].redactions == 2


async def test_refusals_and_tool_call_arguments_are_judged_and_redacted(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    arguments = orjson.dumps({"card": "4111 1111 1111 1111", "mail": "jane.doe@example.com", "key": SECRET}).decode()
    body = {
        "model": "upstream/echo",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no, jane.doe@example.com"}]},
            {
                "role": "assistant",
                "content": None,
                "refusal": "not with 4111 1111 1111 1111",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "pay", "arguments": arguments}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "paid"},
            {"role": "user", "content": "ok"},
        ],
    }
    async with guarded(upstream_url, PII_IN) as g:
        blocked = await g.client.post("/v1/chat/completions", json={**body, "extra": {"guards": ["no_pii"]}})
        assert blocked.status_code == 400 and fake_upstream.requests == []
        # Only the tool call's arguments hold a secret key: they are judged too.
        key_blocked = await g.client.post("/v1/chat/completions", json={**body, "extra": {"guards": ["no_keys"]}})
        assert key_blocked.status_code == 400 and fake_upstream.requests == []
        assert key_blocked.json()["error"]["message"] == "Guard 'no_keys' blocked the request: matches pattern #1 of 1."

        redacted = await g.client.post(
            "/v1/chat/completions", json={**body, "extra": {"guards": ["mask_pii", "mask_keys"]}}
        )
        assert redacted.status_code == 200
        sent = fake_upstream.last().body["messages"]
        assert sent[1]["content"] == [{"type": "refusal", "refusal": "no, [EMAIL]"}]
        assert sent[2]["refusal"] == "not with [CARD]"
        sent_arguments = sent[2]["tool_calls"][0]["function"]["arguments"]
        assert orjson.loads(sent_arguments) == {"card": "[CARD]", "mail": "[EMAIL]", "key": "[KEY]"}
        assert "4111" not in str(sent) and "jane" not in str(sent) and SECRET not in str(sent)
        assert redacted.json()["choices"][0]["message"]["content"] == "ok"
        assert g.results()["mask_pii"].redactions == 4 and g.results()["mask_keys"].redactions == 1


@pytest.mark.parametrize("messages", [5, 1.5, True, {"role": "user"}])
async def test_a_malformed_messages_field_reaches_the_guards_and_is_a_400_not_a_500(
    upstream_url: str, fake_upstream: FakeOpenAI, messages: Any
) -> None:
    guards = {"short": {"type": "word_count", "stage": "input", "action": "block", "parameters": {"max_words": 5}}}
    async with guarded(upstream_url, guards) as g:
        body = {"model": "upstream/gpt-4o", "messages": messages, "extra": {"guards": ["short"]}}
        response = await g.client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, response.text
        assert "messages" in response.json()["error"]["message"]
        assert fake_upstream.requests == []
