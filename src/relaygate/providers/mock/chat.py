"""The mock's chat completions, whole or as the chunks OpenAI streams (agent.py decides what they say)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson

from relaygate.providers.mock.agent import answer, text_of

__all__ = ["Reply", "completion"]

JSON = dict[str, Any]
# A streamed tool call's arguments come in pieces of at most this many characters, as OpenAI's do.
ARGUMENT_PIECE = 8


class Reply:
    """One answer to a chat request: its content in streamed pieces, or its tool calls."""

    def __init__(self, body: JSON) -> None:
        messages: list[Any] = body["messages"] if isinstance(body.get("messages"), list) else []
        self.id = "chatcmpl-mock-" + hashlib.sha256(orjson.dumps(messages)).hexdigest()[:24]
        self.created = int(time.time())
        self.model = body.get("model")
        self.n = _n(body)
        self.prompt_tokens = sum(
            len(text_of(message.get("content")).split()) for message in messages if isinstance(message, dict)
        )
        made = answer(body)
        self.tool_calls = made.tool_calls
        self.finish_reason = "tool_calls" if self.tool_calls else "stop"
        pieces = re.findall(r" ?[^ ]+| +", made.content) if made.content else []
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces = pieces[:limit]
            self.finish_reason = "length"
        self.pieces: list[str] = pieces
        self.content = "".join(pieces) if made.content is not None else None
        self.argument_pieces = [
            [call.arguments[i : i + ARGUMENT_PIECE] for i in range(0, len(call.arguments), ARGUMENT_PIECE)]
            for call in self.tool_calls
        ]

    def usage(self) -> JSON:
        completion = (len(self.pieces) + sum(len(pieces) for pieces in self.argument_pieces)) * self.n
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def deltas(self) -> Iterator[tuple[bool, JSON]]:
        """The deltas of one choice's stream, each with whether a pause (``chunk_delay``) comes before it."""
        yield False, {"role": "assistant", "content": None if self.tool_calls else ""}
        for index, (call, pieces) in enumerate(zip(self.tool_calls, self.argument_pieces, strict=True)):
            header = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name}}
            yield False, {"tool_calls": [{**header, "function": {"name": call.name, "arguments": ""}}]}
            for piece in pieces:
                yield True, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
        for piece in self.pieces:
            yield True, {"content": piece}


def completion(body: JSON) -> JSON:
    reply = Reply(body)
    message: JSON = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [call.wire() for call in reply.tool_calls]
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "system_fingerprint": "fp_relaygate_mock",
        "choices": [
            {"index": index, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
            for index in range(reply.n)
        ],
        "usage": reply.usage(),
    }


def _n(body: JSON) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and 1 <= n <= 16 else 1
