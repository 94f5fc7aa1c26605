"""A Gemini ``streamGenerateContent?alt=sse`` stream as OpenAI ``chat.completion.chunk`` frames.

Each event is a whole ``GenerateContentResponse`` holding the next piece of every candidate. Gemini
sends no terminator: the end of the body is the end of the answer, so the finish chunks, the usage
chunk and ``[DONE]`` follow it. An ``{"error": ...}`` event becomes the final error frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relaygate.context import RequestContext
from relaygate.errors import UpstreamError
from relaygate.providers.gemini.errors import stream_error
from relaygate.providers.gemini.responses import (
    block_reason,
    candidate_index,
    candidate_output,
    candidates_of,
    completion_id,
    finish_reason,
    logprobs_of,
    model_of,
    usage_of,
)
from relaygate.providers.streaming import DONE_FRAME, ChunkMapper
from relaygate.sse import SSEEvent

__all__ = ["GeminiStream"]

JSON = dict[str, Any]


@dataclass(slots=True)
class _Choice:
    started: bool = False
    tool_calls: int = 0  # also the index of the next call: it keeps running across chunks
    finish: str | None = None


class GeminiStream(ChunkMapper):
    """What a Gemini stream has said so far, turned into OpenAI chunks event by event.

    Text arrives as deltas and each function call whole, so both are forwarded at once. Finish reasons
    and usage (cumulative: the latest wins) are held back to the end, because a function call or a
    later usage count may still change them; the finish chunks and the usage chunk close the stream.
    """

    def __init__(self, provider: str, ctx: RequestContext, *, usage_chunk: bool) -> None:
        super().__init__(provider, ctx, usage_chunk=usage_chunk)
        self.choices: dict[int, _Choice] = {}
        self.usage: JSON | None = None
        self.blocked = False

    def error_in(self, payload: JSON, event: SSEEvent) -> UpstreamError | None:
        return stream_error(self.provider, payload["error"]) if "error" in payload else None

    def on_event(self, payload: JSON, event: SSEEvent) -> tuple[bytes, bool]:
        return self._response(payload), False

    def end(self) -> bytes:
        return self._finish() + DONE_FRAME

    def chunk_id(self) -> str:
        return self.id or completion_id({})

    def has_usage(self) -> bool:
        return self.usage is not None

    def usage_so_far(self) -> JSON:
        return self.usage or usage_of(None)

    def _response(self, response: JSON) -> bytes:
        if not self.id:
            self.id = completion_id(response)
            self.model = model_of(response, self.model)
        if isinstance(response.get("usageMetadata"), dict):
            self.usage = usage_of(response["usageMetadata"])
        candidates = candidates_of(response)
        if not candidates and block_reason(response):
            self.blocked = True
        out = b""
        for position, candidate in enumerate(candidates):
            index = candidate_index(candidate, position)
            choice = self.choices.setdefault(index, _Choice())
            if isinstance(candidate.get("finishReason"), str):
                choice.finish = candidate["finishReason"]
            text, calls = candidate_output(candidate)
            logprobs = logprobs_of(candidate)
            if not (text or calls or logprobs):
                continue
            delta: JSON = {}
            if not choice.started:
                delta["role"] = "assistant"
                choice.started = True
            if text or not calls:
                delta["content"] = text
            if calls:
                delta["tool_calls"] = [{"index": choice.tool_calls + k, **call} for k, call in enumerate(calls)]
                choice.tool_calls += len(calls)
            out += self.emit([{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}])
        return out

    def _finish(self) -> bytes:
        """The finish chunk of every choice, then the usage chunk if the client asked for it."""
        out = b""
        for index, choice in sorted((self.choices or {0: _Choice()}).items()):
            if self.blocked and choice.finish is None:
                reason = "content_filter"
            else:
                reason = finish_reason(choice.finish, has_calls=choice.tool_calls > 0)
            delta: JSON = {} if choice.started else {"role": "assistant", "content": None}
            out += self.emit([{"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}])
        return out + self.usage_frame()
