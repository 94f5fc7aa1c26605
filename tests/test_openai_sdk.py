"""Acceptance test of issue #1: the official openai SDK, unchanged, against the real ``relaygate serve``.

One ``relaygate serve --config FILE`` subprocess, its keys taken from the environment through ``${VAR}``,
sits in front of the fake OpenAI-compatible server on 127.0.0.1 (``tests/fakes/openai_server.py``; its
model names choose its behaviour). The config holds four providers: ``upstream`` (the fake server),
``dead`` (a port where nothing listens), ``slow`` (``timeouts.read: 0.5``) and ``hasty``
(``timeouts.first_chunk: 0.5``), so that one process covers the success paths and every error case.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolChoiceOptionParam, ChatCompletionToolParam

from relaygate.keys import hash_key
from tests.conftest import ADMIN_KEY, KEY_A, KEY_B, UPSTREAM_KEY
from tests.fakes.openai_server import REPLY, FakeOpenAI
from tests.servers import free_port, relaygate_serve

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
CHAT_MODEL = "upstream/gpt-4o"
EMBEDDING_MODEL = "upstream/text-embedding-3-small"
IMAGE_MODEL = "upstream/gpt-image-1"
MAX_BODY_BYTES = 65536
# What the fake upstream streams: an empty role delta, then each word followed by a space.
STREAMED_TEXT = "".join(word + " " for word in REPLY.split(" "))
ERROR_FIELDS = {"message", "type", "param", "code"}

CONFIG = """\
providers:
  upstream:
    kind: openai
    base_url: {upstream}
    api_key: ${{UPSTREAM_KEY}}
  dead:
    kind: openai
    base_url: {dead}
    api_key: ${{UPSTREAM_KEY}}
  slow:
    kind: openai
    base_url: {upstream}
    api_key: ${{UPSTREAM_KEY}}
    timeouts: {{read: 0.5}}
  hasty:
    kind: openai
    base_url: {upstream}
    api_key: ${{UPSTREAM_KEY}}
    timeouts: {{first_chunk: 0.5}}
projects:
  - id: proj-a
    keys: ["${{PROJ_A_KEY}}"]
  - id: proj-b
    keys: ["{proj_b_key}"]
admin_key: ${{RELAYGATE_ADMIN_KEY}}
max_body_bytes: {max_body_bytes}
# One attempt per request: these tests look at how one provider failure reaches the SDK (retries and
# fallbacks are tested in test_routing.py).
retry: {{max_attempts: 1}}
"""


@pytest.fixture(scope="module")
def gateway_url(
    fake_upstream_server: tuple[FakeOpenAI, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL (no ``/v1``) of one ``relaygate serve`` subprocess for the whole module."""
    _, upstream = fake_upstream_server
    config: Path = tmp_path_factory.mktemp("sdk") / "relaygate.yaml"
    config.write_text(
        CONFIG.format(
            upstream=upstream + "/v1",
            dead=f"http://127.0.0.1:{free_port()}/v1",
            proj_b_key=hash_key(KEY_B),
            max_body_bytes=MAX_BODY_BYTES,
        )
    )
    env = {
        "UPSTREAM_KEY": UPSTREAM_KEY,
        "PROJ_A_KEY": KEY_A,
        "RELAYGATE_ADMIN_KEY": ADMIN_KEY,
        # Keep the run hermetic: a provider key in the developer's environment would add a real provider.
        "OPENAI_API_KEY": "",
        "ANTHROPIC_API_KEY": "",
        "GEMINI_API_KEY": "",
    }
    with relaygate_serve(["--config", str(config)], env=env) as base_url:
        yield base_url


def sdk(base_url: str, api_key: str = KEY_A, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=10.0, **kwargs)


@pytest.fixture(params=["x-project-id", "project-path", "key-only"])
def client(request: pytest.FixtureRequest, gateway_url: str) -> Iterator[openai.OpenAI]:
    """The SDK as a user configures it, in each way of naming the project (or not naming it)."""
    if request.param == "x-project-id":
        made = sdk(gateway_url + "/v1", default_headers={"X-Project-Id": "proj-a"})
    elif request.param == "project-path":
        made = sdk(gateway_url + "/proj-a/v1")
    else:
        made = sdk(gateway_url + "/v1")  # KEY_A belongs to proj-a only
    with made:
        yield made


@pytest.fixture
def api(gateway_url: str) -> Iterator[openai.OpenAI]:
    """One SDK client for the error cases, naming its project with X-Project-Id."""
    with sdk(gateway_url + "/v1", default_headers={"X-Project-Id": "proj-a"}) as made:
        yield made


def assert_error_shape(response: Any, status: int, *, admin: bool = False) -> dict[str, Any]:
    """``response`` (httpx or the SDK's httpx2) carries ``status`` and exactly the OpenAI error shape; the admin
    API's (``admin``) has seed 003's ``code`` (the status) and ``message`` beside it."""
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if admin:
        assert (body.pop("code"), body.pop("message")) == (status, body["error"]["message"])
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == ERROR_FIELDS
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error


def assert_sdk_error(exc: openai.APIStatusError, status: int) -> dict[str, Any]:
    """The SDK's view of an error (``exc.body`` is the inner object) agrees with the raw response."""
    error = assert_error_shape(exc.response, status)
    assert exc.status_code == status
    assert exc.body == error
    assert exc.code == error["code"] and exc.param == error["param"] and exc.type == error["type"]
    return error


# --- what works ---------------------------------------------------------------------------------------


def test_chat(client: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 16
    assert raw.headers["x-provider-name"] == "upstream" and raw.headers["x-model-name"] == "gpt-4o"
    seen = fake_upstream.last("/chat/completions")
    assert seen.body == {"model": "gpt-4o", "messages": MESSAGES}
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # ${UPSTREAM_KEY}, not the client's key


def test_streaming_chat(client: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    chunks = list(client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, stream=True))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == STREAMED_TEXT
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.choices for chunk in chunks), "the usage chunk the gateway asked for must not reach the client"
    assert all(chunk.usage is None for chunk in chunks)
    assert fake_upstream.last("/chat/completions").body["stream_options"] == {"include_usage": True}


def test_streaming_chat_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == STREAMED_TEXT
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (11, 5, 16)
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_tools_and_tool_choice_pass_through(client: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    tools: list[ChatCompletionToolParam] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    tool_choice: ChatCompletionToolChoiceOptionParam = {"type": "function", "function": {"name": "get_weather"}}
    completion = client.chat.completions.create(
        model=CHAT_MODEL, messages=MESSAGES, tools=tools, tool_choice=tool_choice, parallel_tool_calls=False
    )
    assert completion.choices[0].message.content == REPLY
    sent = fake_upstream.last("/chat/completions").body
    assert sent["tools"] == tools
    assert sent["tool_choice"] == tool_choice
    assert sent["parallel_tool_calls"] is False


def test_embeddings_with_the_sdk_default_encoding(client: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    # The SDK asks for base64 on its own and decodes it back into floats.
    response = client.embeddings.create(model=EMBEDDING_MODEL, input=["a", "b", "c"])
    assert fake_upstream.last("/embeddings").body["encoding_format"] == "base64"
    assert fake_upstream.last("/embeddings").body["model"] == "text-embedding-3-small"
    assert [list(item.embedding) for item in response.data] == [[0.5, -0.25, float(i)] for i in range(3)]
    assert [item.index for item in response.data] == [0, 1, 2]
    assert response.usage.total_tokens == 4


def test_embeddings_as_floats(client: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    response = client.embeddings.create(model=EMBEDDING_MODEL, input="a", encoding_format="float")
    assert fake_upstream.last("/embeddings").body["encoding_format"] == "float"
    assert [item.embedding for item in response.data] == [[0.5, -0.25, 0.0]]


def test_images_generate(client: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    response = client.images.generate(model=IMAGE_MODEL, prompt="a cat", n=2)
    assert response.data is not None
    assert [image.b64_json for image in response.data] == ["aW1hZ2U=", "aW1hZ2U="]
    assert fake_upstream.last("/images/generations").body == {"model": "gpt-image-1", "prompt": "a cat", "n": 2}


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert {"upstream/gpt-4o", "upstream/text-embedding-3-small", "mock/echo"} <= set(ids)
    assert not any(model_id.startswith("dead/") for model_id in ids), "an unreachable provider lists nothing"
    model = client.models.retrieve("upstream/gpt-4o")  # the SDK sends the slash as %2F
    assert (model.id, model.object, model.owned_by) == ("upstream/gpt-4o", "model", "upstream")


def test_a_key_stored_as_sha256_works_without_naming_its_project(gateway_url: str) -> None:
    with sdk(gateway_url + "/v1", api_key=KEY_B) as client:
        completion = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert completion.choices[0].message.content == REPLY


# --- who may call -----------------------------------------------------------------------------------


def test_missing_key_is_401(api: openai.OpenAI, gateway_url: str, fake_upstream: FakeOpenAI) -> None:
    # The SDK refuses to be built without a key, so the Authorization header is omitted per request.
    with pytest.raises(openai.AuthenticationError) as caught:
        api.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, extra_headers={"Authorization": openai.Omit()})
    assert "authorization" not in caught.value.request.headers
    assert assert_sdk_error(caught.value, 401)["code"] == "invalid_api_key"
    plain = httpx.post(gateway_url + "/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES})
    assert_error_shape(plain, 401)
    assert not fake_upstream.requests


def test_unknown_key_is_401(gateway_url: str) -> None:
    with sdk(gateway_url + "/proj-a/v1", api_key="rg-not-a-known-key") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.models.list()
    assert assert_sdk_error(caught.value, 401)["code"] == "invalid_api_key"


@pytest.mark.parametrize("naming", ["x-project-id", "project-path"])
def test_key_of_another_project_is_403(gateway_url: str, naming: str, fake_upstream: FakeOpenAI) -> None:
    if naming == "x-project-id":
        client = sdk(gateway_url + "/v1", api_key=KEY_B, default_headers={"X-Project-Id": "proj-a"})
    else:
        client = sdk(gateway_url + "/proj-a/v1", api_key=KEY_B)
    with client, pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    assert assert_sdk_error(caught.value, 403)["code"] == "permission_denied"
    assert not fake_upstream.requests


def test_project_in_path_and_header_differ_is_400(gateway_url: str) -> None:
    with sdk(gateway_url + "/proj-a/v1", default_headers={"X-Project-Id": "proj-b"}) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES)
    error = assert_sdk_error(caught.value, 400)
    assert (error["code"], error["param"]) == ("project_mismatch", "X-Project-Id")


def test_admin_routes_need_the_admin_key(gateway_url: str) -> None:
    missing = httpx.get(gateway_url + "/admin/anything")
    assert assert_error_shape(missing, 401, admin=True)["code"] == "invalid_api_key"
    wrong = httpx.get(gateway_url + "/admin/anything", headers={"X-Admin-Key": "not-the-admin-key"})
    assert_error_shape(wrong, 401, admin=True)
    # A client key is not an admin key.
    client_key = httpx.get(gateway_url + "/admin/anything", headers={"Authorization": f"Bearer {KEY_A}"})
    assert_error_shape(client_key, 401, admin=True)
    right = httpx.get(gateway_url + "/admin/anything", headers={"X-Admin-Key": ADMIN_KEY})
    assert assert_error_shape(right, 404, admin=True)["code"] == "unknown_url"  # let in, but no such route yet


# --- what is refused before the upstream is called --------------------------------------------------


def test_malformed_json_is_400(gateway_url: str, fake_upstream: FakeOpenAI) -> None:
    response = httpx.post(
        gateway_url + "/v1/chat/completions",
        content=b'{"model": "upstream/gpt-4o", "messages": [',
        headers={"authorization": f"Bearer {KEY_A}", "content-type": "application/json"},
    )
    assert assert_error_shape(response, 400)["code"] == "invalid_json"
    assert not fake_upstream.requests


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", {"messages": MESSAGES}, "model"),
        ("/chat/completions", {"model": CHAT_MODEL}, "messages"),
        ("/embeddings", {"model": EMBEDDING_MODEL}, "input"),
        ("/images/generations", {"model": IMAGE_MODEL}, "prompt"),
    ],
)
def test_missing_required_field_is_400_naming_it(
    api: openai.OpenAI, fake_upstream: FakeOpenAI, path: str, body: dict[str, Any], param: str
) -> None:
    # The typed methods will not build these requests; the SDK's own low-level post() will.
    with pytest.raises(openai.BadRequestError) as caught:
        api.post(path, body=body, cast_to=object)
    error = assert_sdk_error(caught.value, 400)
    assert (error["param"], error["code"]) == (param, "missing_required_parameter")
    assert param in error["message"]
    assert not fake_upstream.requests


def test_unknown_provider_is_404_model_not_found(api: openai.OpenAI, fake_upstream: FakeOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        api.chat.completions.create(model="nope/x", messages=MESSAGES)
    error = assert_sdk_error(caught.value, 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    with pytest.raises(openai.NotFoundError) as caught:
        api.models.retrieve("nope/x")
    assert assert_sdk_error(caught.value, 404)["code"] == "model_not_found"
    assert not fake_upstream.requests


def test_body_over_max_body_bytes_is_413(api: openai.OpenAI, gateway_url: str, fake_upstream: FakeOpenAI) -> None:
    big: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x" * (MAX_BODY_BYTES + 1)}]
    with pytest.raises(openai.APIStatusError) as caught:
        api.chat.completions.create(model=CHAT_MODEL, messages=big)
    assert assert_sdk_error(caught.value, 413)["code"] == "request_too_large"
    # Without a Content-Length (chunked), the limit is enforced while reading.
    chunked = httpx.post(
        gateway_url + "/v1/chat/completions",
        content=iter(
            [b'{"model": "upstream/gpt-4o", "messages": [{"role": "user", "content": "', b"x" * MAX_BODY_BYTES, b'"}]}']
        ),
        headers={"authorization": f"Bearer {KEY_A}", "content-type": "application/json"},
    )
    assert "content-length" not in chunked.request.headers
    assert assert_error_shape(chunked, 413)["code"] == "request_too_large"
    assert not fake_upstream.requests


def test_wrong_method_is_405(api: openai.OpenAI, gateway_url: str) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        api.get("/chat/completions", cast_to=object)
    assert assert_sdk_error(caught.value, 405)["code"] == "method_not_allowed"
    assert caught.value.response.headers["allow"] == "POST"
    plain = httpx.get(gateway_url + "/v1/chat/completions", headers={"authorization": f"Bearer {KEY_A}"})
    assert_error_shape(plain, 405)


# --- upstream failures ------------------------------------------------------------------------------


def test_upstream_429_is_a_rate_limit_error_keeping_retry_after(api: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(model="upstream/status-429", messages=MESSAGES)
    error = assert_sdk_error(caught.value, 429)
    assert error == {"message": "fake failure 429", "type": "fake_error", "param": None, "code": "fake_429"}
    assert caught.value.response.headers["retry-after"] == "7"
    # Streamed, the error comes before the stream starts: the same status, body and header.
    with pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(model="upstream/status-429", messages=MESSAGES, stream=True)
    assert assert_sdk_error(caught.value, 429)["code"] == "fake_429"
    assert caught.value.response.headers["retry-after"] == "7"


def test_upstream_500_is_an_internal_server_error(api: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        api.chat.completions.create(model="upstream/status-500", messages=MESSAGES)
    error = assert_sdk_error(caught.value, 500)
    assert error == {"message": "fake failure 500", "type": "fake_error", "param": None, "code": "fake_500"}


def test_upstream_error_that_is_not_json_gets_the_openai_shape(api: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        api.embeddings.create(model="upstream/text-status-503", input="a")
    error = assert_sdk_error(caught.value, 503)
    assert "upstream exploded" in error["message"]


def test_upstream_dropping_a_stream_raises_while_iterating(api: openai.OpenAI) -> None:
    stream = api.chat.completions.create(model="upstream/broken", messages=MESSAGES, stream=True)
    received: list[str] = []
    with stream, pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert stream.response.status_code == 200
    assert "".join(received) == "partial"
    assert not isinstance(caught.value, openai.APIStatusError)
    assert isinstance(caught.value.body, dict) and set(caught.value.body) == ERROR_FIELDS
    assert caught.value.code == "upstream_connection_error"


def test_upstream_error_event_in_a_stream_raises_while_iterating(api: openai.OpenAI) -> None:
    stream = api.chat.completions.create(model="upstream/error-event", messages=MESSAGES, stream=True)
    with stream, pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert stream.response.status_code == 200
    assert (caught.value.message, caught.value.code) == ("overloaded mid-stream", "overloaded")


def test_unreachable_upstream_is_502(api: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        api.chat.completions.create(model="dead/gpt-4o", messages=MESSAGES)
    assert assert_sdk_error(caught.value, 502)["code"] == "upstream_connection_error"
    with pytest.raises(openai.InternalServerError) as caught:
        api.chat.completions.create(model="dead/gpt-4o", messages=MESSAGES, stream=True)
    assert assert_sdk_error(caught.value, 502)["code"] == "upstream_connection_error"


def test_read_timeout_is_504(api: openai.OpenAI) -> None:
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        api.chat.completions.create(model="slow/sleep-2", messages=MESSAGES)
    assert time.monotonic() - started < 1.5
    error = assert_sdk_error(caught.value, 504)
    assert (error["type"], error["code"]) == ("timeout_error", "upstream_timeout")


def test_first_chunk_timeout_is_a_504_status_before_any_byte_is_streamed(api: openai.OpenAI) -> None:
    started = time.monotonic()
    # create() itself raises: the status arrived as a real HTTP 504, not as an event of a 200 stream.
    with pytest.raises(openai.InternalServerError) as caught:
        api.chat.completions.create(model="hasty/sleep-2", messages=MESSAGES, stream=True)
    assert time.monotonic() - started < 1.5
    error = assert_sdk_error(caught.value, 504)
    assert (error["type"], error["code"]) == ("timeout_error", "upstream_timeout")
