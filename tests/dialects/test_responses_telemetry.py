"""A Responses call's spans look like a chat call's: ``gen_ai.operation.name`` is ``chat`` as the GenAI
conventions name an OpenAI Responses call, the request's span is named by its route, and the response id
on the span is the one the client got."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind

from relaygate import Gateway
from tests.conftest import KEY_A, make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.test_telemetry import Recorded

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_responses_call_is_a_chat_span(upstream_url: str, fake_upstream: FakeOpenAI, stream: bool) -> None:
    recorded = Recorded()
    gateway = Gateway(make_settings(upstream_url), tracer_provider=recorded.tracer_provider)
    headers = {"authorization": f"Bearer {KEY_A}", "x-thread-id": "t-1"}
    body = {"model": "upstream/gpt-4o", "input": "Hi", "temperature": 0.5, "stream": stream}
    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers) as client:
            response = await client.post("/v1/responses", json=body)
            retrieved = await client.get(f"/v1/responses/{_id(response.text)}")
    assert response.status_code == retrieved.status_code == 200
    server = [span for span in recorded.finished() if span.kind == SpanKind.SERVER]
    assert [span.name for span in server] == ["POST /v1/responses", "GET /v1/responses/{response_id}"]
    call = recorded.one(SpanKind.CLIENT)
    assert call.name == "chat gpt-4o"
    attributes: dict[str, Any] = dict(call.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.conversation.id"] == "t-1"
    assert attributes["gen_ai.response.id"] == _id(response.text)
    assert attributes["gen_ai.usage.input_tokens"] == 11 and attributes["gen_ai.usage.output_tokens"] == 5


def _id(text: str) -> str:
    """The response id of a response object, or of the stream's last event."""
    start = text.index('"id":"resp_') + len('"id":"')
    return text[start : text.index('"', start)]
