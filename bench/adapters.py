"""What a provider adapter costs per streamed chunk, measured in-process.

Each adapter's ``stream_frames`` is fed a recorded stream in its provider's wire format, one event
per network read (the worst case: nothing is batched), and the time per chunk is what it takes to
decode the SSE, map the event to an OpenAI chunk, record it on the request context and frame it.
OpenAI-compatible streams are passed through nearly as they come; Anthropic and Gemini streams are
rewritten event by event.

``python -m bench.adapters`` prints the figures on their own; ``./bench/run`` includes them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import orjson

from relaygate.context import RequestContext
from relaygate.providers import AnthropicProvider, GeminiProvider, OpenAIProvider, Provider
from relaygate.settings import ProviderSettings
from relaygate.upstream import AiohttpClient

__all__ = ["measure"]

WORD = "word "
USAGE = {"prompt_tokens": 12, "completion_tokens": 200, "total_tokens": 212}


class _Replay:
    """A recorded upstream response, read back one piece per read."""

    status = 200
    headers: Mapping[str, str] = {}

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = reads

    async def read(self) -> bytes:
        return b"".join(self._reads)

    async def iter_raw(self) -> AsyncGenerator[bytes, None]:
        for piece in self._reads:
            yield piece

    async def aclose(self) -> None:
        return None


def _sse(data: Any, event: str | None = None, end: bytes = b"\n\n") -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + end


def openai_stream(chunks: int) -> list[bytes]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": WORD}) for _ in range(chunks)),
        chunk({}, "stop"),
        _sse({**base, "choices": [], "usage": USAGE}),
        b"data: [DONE]\n\n",
    ]


def anthropic_stream(chunks: int) -> list[bytes]:
    usage = {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": WORD}}
    return [
        _sse({"type": "message_start", "message": message}, "message_start"),
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),  # fmt: skip
        *(_sse(delta, "content_block_delta") for _ in range(chunks)),
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": chunks},
            },
            "message_delta",
        ),  # fmt: skip
        _sse({"type": "message_stop"}, "message_stop"),
    ]


def gemini_stream(chunks: int) -> list[bytes]:
    def response(text: str, finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        meta = {"promptTokenCount": 12, "candidatesTokenCount": chunks, "totalTokenCount": 12 + chunks}
        body = {
            "candidates": [candidate],
            "usageMetadata": meta,
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
        }
        return _sse(body, end=b"\r\n\r\n")

    return [*(response(WORD) for _ in range(chunks - 1)), response(WORD, "STOP")]


ADAPTERS: dict[
    str, tuple[Callable[[str, ProviderSettings, AiohttpClient], Provider], str, Callable[[int], list[bytes]]]
] = {
    "openai (pass-through)": (OpenAIProvider, "openai", openai_stream),
    "anthropic": (AnthropicProvider, "anthropic", anthropic_stream),
    "gemini": (GeminiProvider, "gemini", gemini_stream),
}


async def _time_one(provider: Provider, reads: list[bytes], usage_chunk: bool) -> float:
    ctx = RequestContext()
    start = time.perf_counter()
    frames = provider.stream_frames(_Replay(reads), ctx, usage_chunk=usage_chunk)
    out = [frame async for frame in frames]
    elapsed = time.perf_counter() - start
    if not out or ctx.usage is None:
        raise RuntimeError(f"{provider.kind}: the replayed stream produced no frames or no usage")
    return elapsed


async def _measure(chunks: int, repeats: int) -> dict[str, dict[str, float]]:
    results = {}
    for label, (adapter, kind, stream) in ADAPTERS.items():
        base_url = "http://127.0.0.1:9/v1" if kind == "openai" else None
        provider = adapter(label, ProviderSettings(kind=kind, base_url=base_url), AiohttpClient())
        reads = stream(chunks)
        await _time_one(provider, reads, True)  # warm-up
        best = min([await _time_one(provider, reads, True) for _ in range(repeats)])
        results[label] = {"us_per_chunk": best / len(reads) * 1e6, "chunks": len(reads)}
        await provider.aclose()
    return results


def measure(chunks: int = 2000, repeats: int = 5) -> dict[str, dict[str, float]]:
    """Best-of-``repeats`` microseconds per streamed chunk, per adapter."""
    return asyncio.run(_measure(chunks, repeats))


if __name__ == "__main__":
    for label, figures in measure().items():
        print(f"{label}: {figures['us_per_chunk']:.1f} µs per streamed chunk")
