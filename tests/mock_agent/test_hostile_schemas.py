"""Schemas and tools no client should send still get an answer from the mock, never a 500: recursion that
cannot end, huge sizes, malformed keywords, huge numbers in the text. The answer is still a tool call or
JSON (not always valid: some of these schemas have no valid value)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.mock_agent.conftest import KEY, MODEL

SCHEMAS: list[Any] = [
    {"$defs": {"A": {"allOf": [{"$ref": "#/$defs/A"}]}}, "$ref": "#/$defs/A"},
    {
        "$defs": {"N": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}, "required": ["n"]}},
        "$ref": "#/$defs/N",
    },
    {"$ref": "#/nowhere"},
    {"$ref": "https://example.com/schema.json"},
    {"type": "array", "minItems": 10**9, "items": {"type": "string", "minLength": 10**9}},
    {"type": "object", "properties": [1], "required": 5, "anyOf": 3, "prefixItems": 2, "allOf": "x", "enum": {}},
    {"type": ["boolean", 7], "pattern": "(", "multipleOf": 0, "minimum": "x"},
    {"type": "integer", "minimum": 10, "maximum": 1},
    {"type": "string", "pattern": "^[0-9]{3}$", "format": "bogus"},
    True,
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_hostile_schema_gets_an_answer(gateway_url: str, schema: Any) -> None:
    text = "Use get_weather for Paris " + "9" * 5000 + " 1e999"
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": schema}}]
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        for body in (
            {"tools": tools},
            {"tools": tools, "stream": True},
            {"response_format": response_format},
            {"response_format": response_format, "stream": True},
        ):
            payload = {"model": MODEL, "messages": [{"role": "user", "content": text}], **body}
            response = client.post("/v1/chat/completions", json=payload)
            assert response.status_code == 200, response.text
            if body.get("stream"):
                assert response.text.endswith("data: [DONE]\n\n")
                continue
            message = response.json()["choices"][0]["message"]
            if "tools" in body:
                assert [call["function"]["name"] for call in message["tool_calls"]] == ["get_weather"]
            else:
                json.loads(message["content"])
