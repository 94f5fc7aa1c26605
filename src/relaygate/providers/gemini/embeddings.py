"""OpenAI embeddings from Gemini's ``:batchEmbedContents``, sent in batches of at most 100.

:func:`embed` sends the batches a few at a time and puts their vectors together into one OpenAI answer,
which the provider then serves as if the upstream had sent it (:class:`Assembled`). Gemini embeds text
only (token arrays are a 400), and it does not count the tokens of embeddings: their usage is an
estimate, 4 characters a token. Vectors shorter than the model's full size are L2-normalised, as
``gemini-embedding-001`` normalises only its full-size ones; both encodings round through float32.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import anyio
import orjson
from anyio.abc import TaskGroup

from relaygate.errors import GatewayError, UpstreamError
from relaygate.providers.base import Provider, json_answer, read_all
from relaygate.providers.params import invalid_value, optional_int
from relaygate.upstream import UpstreamResponse

__all__ = ["Assembled", "embed", "embedding_inputs", "embeddings_response"]

EMBED_BATCH_SIZE = 100  # "at most 100 requests can be in one batch"
MAX_EMBED_INPUTS = 2048  # OpenAI's own limit; keeps one request from fanning out without bound
EMBED_CONCURRENCY = 4
FULL_EMBEDDING_SIZE = 3072  # gemini-embedding-001 normalises only its full-size vectors
CHARS_PER_TOKEN = 4


async def embed(provider: Provider, url: str, body: dict[str, Any], model: str) -> UpstreamResponse:
    """Every batch sent (a few at a time) to ``url`` and answered; the OpenAI body comes back as the response."""
    texts = embedding_inputs(body)
    requests = embed_requests(texts, model, optional_int(body, "dimensions", minimum=1))
    batches = [requests[start : start + EMBED_BATCH_SIZE] for start in range(0, len(requests), EMBED_BATCH_SIZE)]
    results: list[list[list[float]]] = [[] for _ in batches]
    failures: list[GatewayError] = []
    limiter = anyio.CapacityLimiter(EMBED_CONCURRENCY)

    async def send_batch(index: int, group: TaskGroup) -> None:
        async with limiter:
            try:
                raw = await read_all(await provider.post(url, {"requests": batches[index]}))
                results[index] = embed_values(raw, len(batches[index]), provider.name)
            except GatewayError as error:
                # Caught here, not in the group: the client gets this error, not an ExceptionGroup.
                failures.append(error)
                group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        for index in range(len(batches)):
            group.start_soon(send_batch, index, group)
    if failures:
        raise failures[0]
    vectors = [vector for batch in results for vector in batch]
    answer = embeddings_response(vectors, model, body.get("encoding_format"), estimate_tokens(texts))
    return Assembled(orjson.dumps(answer))


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not all(isinstance(item, str) for item in inputs):
        raise invalid_value(
            "Gemini embeds text only: give 'input' as a string or an array of strings, not tokens.", "input"
        )
    if not inputs:
        raise invalid_value("'input' must not be empty.", "input")
    if len(inputs) > MAX_EMBED_INPUTS:
        raise invalid_value(f"'input' may hold at most {MAX_EMBED_INPUTS} strings; got {len(inputs)}.", "input")
    for index, text in enumerate(inputs):
        if not text:
            raise invalid_value(
                "'input' must not contain empty strings.", "input" if isinstance(raw, str) else f"input[{index}]"
            )
    return inputs


def embed_requests(texts: list[str], model: str, dimensions: int | None) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = []
    for text in texts:
        request: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return requests


def embed_values(raw: bytes, expected: int, provider: str) -> list[list[float]]:
    embeddings = json_answer(raw, provider).get("embeddings")
    if not isinstance(embeddings, list) or len(embeddings) != expected:
        raise UpstreamError(f"Provider '{provider}' answered a batch of {expected} embeddings with another count.")
    vectors: list[list[float]] = []
    for item in embeddings:
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
            raise UpstreamError(f"Provider '{provider}' answered with an embedding that is not a list of numbers.")
        vectors.append([float(v) for v in values])
    return vectors


def embeddings_response(
    vectors: list[list[float]], model: str, encoding_format: Any, prompt_tokens: int
) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for index, values in enumerate(vectors):
        if len(values) < FULL_EMBEDDING_SIZE:
            values = l2_normalise(values)
        packed = struct.pack(f"<{len(values)}f", *values)
        embedding: Any
        if encoding_format == "base64":
            embedding = base64.b64encode(packed).decode()
        else:
            # Rounded through float32 so that float and base64 answers decode to the same numbers.
            embedding = list(struct.unpack(f"<{len(values)}f", packed))
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def l2_normalise(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm else values


def estimate_tokens(texts: list[str]) -> int:
    return sum(max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) for text in texts)


class Assembled:
    """An answer put together by the gateway (several embedding batches), served as one response."""

    status = 200

    def __init__(self, body: bytes) -> None:
        self.headers: Mapping[str, str] = {"content-type": "application/json"}
        self._body = body

    async def read(self) -> bytes:
        return self._body

    async def iter_raw(self) -> AsyncGenerator[bytes, None]:
        yield self._body

    async def aclose(self) -> None:
        return None
