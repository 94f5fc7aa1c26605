"""Output guards on streamed answers: judged chunk by chunk, or held whole within a bound."""

from __future__ import annotations

import orjson
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.guards.harness import chat, finish_reasons, guarded, sse, streamed_text

pytestmark = pytest.mark.anyio

SECRET = "sk-abcdefgh12345678"
NO_SECRETS = {"patterns": ["sk-[A-Za-z0-9]{8,}"]}
# Matches longer than what stream guards used to hold back (256 characters).
PEM = "-----BEGIN PRIVATE KEY-----\nMIIE" + "A" * 400 + "\n-----END PRIVATE KEY-----"
JWT = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0" * 12 + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
GUARDS = {
    "no_secrets_out": {"type": "regex", "stage": "output", "action": "block", "parameters": NO_SECRETS},
    "mask_secrets": {
        "type": "regex", "stage": "output", "action": "redact", "parameters": {**NO_SECRETS, "replacement": "[KEY]"},
    },
    "see_secrets": {"type": "regex", "stage": "output", "action": "observe", "parameters": NO_SECRETS},
    "pii_out": {"type": "pii", "stage": "output", "action": "redact"},
    "no_pii_out": {"type": "pii", "stage": "output", "action": "block"},
    "brief": {"type": "word_count", "stage": "output", "action": "block", "parameters": {"max_words": 3}},
    "schema": {
        "type": "json_schema", "stage": "output", "action": "block",
        "parameters": {"schema": {"type": "object", "required": ["name"]}},
    },
    "input_pii": {"type": "pii", "stage": "input", "action": "redact"},
    "no_keys_out": {
        "type": "regex", "stage": "output", "action": "block",
        "parameters": {"patterns": [r"-----BEGIN PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END PRIVATE KEY-----"]},
    },
    "mask_tokens": {
        "type": "regex", "stage": "output", "action": "redact",
        "parameters": {"patterns": [r"eyJ[\w-]+\.[\w-]+\.[\w-]+"], "replacement": "[TOKEN]"},
    },
}  # fmt: skip


def streamed(prompt: str, guards: list[str], size: int = 5) -> dict[str, object]:
    return chat(prompt, model=f"upstream/echo-{size}", stream=True, extra={"guards": guards})


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 11])
async def test_a_secret_split_across_chunks_stops_the_stream_before_any_of_it_leaves(
    upstream_url: str, fake_upstream: FakeOpenAI, size: int
) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=streamed(f"the key is {SECRET} ok", ["no_secrets_out"], size)
        )
        assert response.status_code == 200
        events = sse(response.text)
        assert streamed_text(events) == "the key is "
        assert "sk" not in response.text.replace("chatcmpl", "")
        assert finish_reasons(events) == ["content_filter"]
        assert events[-1] == {
            "error": {
                "message": "Guard 'no_secrets_out' blocked the answer: matches pattern #1 of 1.",
                "type": "invalid_request_error",
                "param": None,
                "code": "guard_violation",
            }
        }
        assert "[DONE]" not in events
        assert g.ctx.finish_reasons == ["content_filter"]
        result = g.results()["no_secrets_out"]
        assert not result.passed and result.reason == "matches pattern #1 of 1"


@pytest.mark.parametrize("size", [1, 2, 3, 6, 9, 13])
async def test_redaction_of_a_stream_holds_back_only_what_may_still_match(
    upstream_url: str, fake_upstream: FakeOpenAI, size: int
) -> None:
    prompt = f"mail jane.doe@example.com, key {SECRET}, card 4242 4242 4242 4242. Bye"
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post("/v1/chat/completions", json=streamed(prompt, ["pii_out", "mask_secrets"], size))
        events = sse(response.text)
        assert streamed_text(events) == "mail [EMAIL], key [KEY], card [CARD]. Bye"
        assert finish_reasons(events) == ["stop"] and events[-1] == "[DONE]"
        assert fake_upstream.last().body["messages"][0]["content"] == prompt
        results = g.results()
        assert results["pii_out"].redactions == 2 and results["mask_secrets"].redactions == 1


@pytest.mark.parametrize("size", [7, 20, 64])
async def test_a_match_longer_than_any_chunk_is_blocked_on_a_stream_as_on_a_whole_answer(
    upstream_url: str, fake_upstream: FakeOpenAI, size: int
) -> None:
    prompt = f"here: {PEM} done"
    async with guarded(upstream_url, GUARDS) as g:
        whole = await g.client.post("/v1/chat/completions", json=chat(prompt, extra={"guards": ["no_keys_out"]}))
        assert whole.status_code == 400 and "MIIE" not in whole.text
        response = await g.client.post("/v1/chat/completions", json=streamed(prompt, ["no_keys_out"], size))
        assert fake_upstream.last().body["messages"][0]["content"] == prompt
        events = sse(response.text)
        assert streamed_text(events) == "here: "
        assert "BEGIN" not in response.text and "AAAA" not in response.text
        assert finish_reasons(events) == ["content_filter"]
        assert events[-1]["error"]["message"] == "Guard 'no_keys_out' blocked the answer: matches pattern #1 of 1."


@pytest.mark.parametrize("size", [5, 16, 50])
async def test_a_long_token_is_redacted_whole_on_a_stream_as_on_a_whole_answer(
    upstream_url: str, fake_upstream: FakeOpenAI, size: int
) -> None:
    prompt = f"token {JWT} ok"
    async with guarded(upstream_url, GUARDS) as g:
        whole = await g.client.post("/v1/chat/completions", json=chat(prompt, extra={"guards": ["mask_tokens"]}))
        assert whole.json()["choices"][0]["message"]["content"] == "token [TOKEN] ok"
        response = await g.client.post("/v1/chat/completions", json=streamed(prompt, ["mask_tokens"], size))
        assert fake_upstream.last().body["messages"][0]["content"] == prompt
        events = sse(response.text)
        assert streamed_text(events) == "token [TOKEN] ok"
        assert "eyJ" not in response.text and "SflKx" not in response.text
        assert finish_reasons(events) == ["stop"] and events[-1] == "[DONE]"
        assert g.results()["mask_tokens"].redactions == 1


@pytest.mark.parametrize("guard", ["no_keys_out", "mask_tokens"])
async def test_a_match_still_in_progress_at_the_hold_bound_stops_the_stream_closed(
    upstream_url: str, fake_upstream: FakeOpenAI, guard: str
) -> None:
    prompt = f"here: {PEM if guard == 'no_keys_out' else JWT} done"
    async with guarded(upstream_url, GUARDS, stream_hold_chars=100) as g:
        response = await g.client.post("/v1/chat/completions", json=streamed(prompt, [guard], 10))
        events = sse(response.text)
        # Neither what was held nor what followed it went out: the stream stopped there.
        assert streamed_text(events) == "here: "
        assert "BEGIN" not in response.text and "AAAA" not in response.text and "eyJ" not in response.text
        assert finish_reasons(events) == ["content_filter"]
        assert events[-1]["error"] == {
            "message": f"Guard '{guard}' could not judge the answer: a possible pattern #1 of 1 ran past "
            "guard_options.stream_hold_chars (100 characters).",
            "type": "server_error",
            "param": None,
            "code": "guard_error",
        }
        result = g.results()[guard]
        assert not result.passed and result.error is not None and result.refused


PII_FORMS = (
    "Mail jane@mail.corp-secret.com, jane.doe@acme.bank.co.uk or a.b+c@mail.example.org; "
    "IBAN DE89 3704 0044 0532 0130 00, de89370400440532013000 or GB82-WEST-1234-5698-7654-32; "
    "call +44 20 7946 0958, (555) 123-4567 or 1-800-555-0199. Bye"
)
PII_REDACTED = "Mail [EMAIL], [EMAIL] or [EMAIL]; IBAN [IBAN], [IBAN] or [IBAN]; call [PHONE], [PHONE] or [PHONE]. Bye"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 13])
async def test_redaction_of_a_stream_does_not_depend_on_where_chunks_split_addresses_and_numbers(
    upstream_url: str, fake_upstream: FakeOpenAI, size: int
) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        whole = await g.client.post("/v1/chat/completions", json=chat(PII_FORMS, extra={"guards": ["pii_out"]}))
        assert whole.json()["choices"][0]["message"]["content"] == PII_REDACTED
        response = await g.client.post("/v1/chat/completions", json=streamed(PII_FORMS, ["pii_out"], size))
        assert fake_upstream.last().body["messages"][0]["content"] == PII_FORMS
        events = sse(response.text)
        assert streamed_text(events) == PII_REDACTED
        for leak in ("secret", "corp", "bank", "co.uk", "example", "3704", "WEST", "7946", "0199"):
            assert leak not in response.text
        assert g.results()["pii_out"].redactions == 9


async def test_an_unguarded_stream_and_a_passing_guarded_stream_send_the_same_bytes(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        prompt = "nothing to see here at all"
        plain = await g.client.post("/v1/chat/completions", json=chat(prompt, model="upstream/echo-4", stream=True))
        assert g.ctx.output_filter is None
        observed = await g.client.post("/v1/chat/completions", json=streamed(prompt, ["see_secrets"], 4))
        assert observed.content == plain.content
        # An input guard alone leaves the stream path as it is.
        only_input = await g.client.post("/v1/chat/completions", json=streamed(prompt, ["input_pii"], 4))
        assert only_input.content == plain.content and g.ctx.output_filter is None


async def test_observing_a_stream_lets_it_through_and_records_the_finding(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post("/v1/chat/completions", json=streamed(f"key {SECRET}", ["see_secrets"], 3))
        events = sse(response.text)
        assert streamed_text(events) == f"key {SECRET}" and events[-1] == "[DONE]"
        result = g.results()["see_secrets"]
        assert not result.passed and result.action == "observe"


async def test_pii_blocks_a_stream_at_the_personal_data(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post(
            "/v1/chat/completions", json=streamed("the IBAN is GB82 WEST 1234 5698 7654 32 thanks", ["no_pii_out"], 4)
        )
        events = sse(response.text)
        assert streamed_text(events) == "the IBAN is "
        assert finish_reasons(events) == ["content_filter"]
        assert events[-1]["error"]["message"] == "Guard 'no_pii_out' blocked the answer: found IBAN."


async def test_word_count_stops_a_stream_once_it_is_too_long(upstream_url: str, fake_upstream: FakeOpenAI) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        response = await g.client.post("/v1/chat/completions", json=streamed("one two three four five", ["brief"], 4))
        events = sse(response.text)
        text = streamed_text(events)
        assert "four" not in text and text.startswith("one two thr")
        assert finish_reasons(events) == ["content_filter"]
        assert events[-1]["error"]["message"] == "Guard 'brief' blocked the answer: more than 3 words."


async def test_a_guard_that_needs_the_whole_answer_holds_the_stream_and_refuses_with_a_real_status(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        valid = orjson.dumps({"name": "Ada"}).decode()
        ok = await g.client.post("/v1/chat/completions", json=streamed(valid, ["schema"], 3))
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/event-stream")
        events = sse(ok.text)
        assert streamed_text(events) == valid and events[-1] == "[DONE]"

        refused = await g.client.post("/v1/chat/completions", json=streamed('{"nom": "Ada"}', ["schema"], 3))
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/json"
        assert refused.json()["error"]["code"] == "guard_violation"
        assert "nom" not in refused.text
        assert g.ctx.status == 400


async def test_a_held_stream_longer_than_the_bound_is_refused_not_let_through(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, GUARDS, stream_hold_chars=20) as g:
        long_answer = orjson.dumps({"name": "A" * 40}).decode()
        response = await g.client.post("/v1/chat/completions", json=streamed(long_answer, ["schema"], 4))
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["code"] == "guard_error"
        assert error["message"] == (
            "Guard 'schema' could not judge the answer: the streamed answer is longer than "
            "guard_options.stream_hold_chars (20 characters)."
        )
        assert g.results()["schema"].error is not None


async def test_a_blocking_stream_guard_inside_a_held_stream_answers_with_an_http_error(
    upstream_url: str, fake_upstream: FakeOpenAI
) -> None:
    async with guarded(upstream_url, GUARDS) as g:
        body = streamed(f'{{"name": "{SECRET}"}}', ["schema", "no_secrets_out"], 3)
        response = await g.client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400
        assert (
            response.json()["error"]["message"] == "Guard 'no_secrets_out' blocked the answer: matches pattern #1 of 1."
        )
        assert SECRET not in response.text
