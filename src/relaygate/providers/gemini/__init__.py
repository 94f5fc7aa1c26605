"""Gemini (Google AI ``v1beta``) behind the OpenAI chat, embeddings and images APIs.

Chat goes to ``models/{model}:generateContent``, or ``:streamGenerateContent?alt=sse`` when streamed;
embeddings to ``:batchEmbedContents`` in batches of at most 100; images to ``:generateContent`` with
``responseModalities: ["IMAGE"]``. The key travels in ``x-goog-api-key``. The mappings between the
two formats are pure functions of the bodies; :class:`GeminiProvider` sends requests and a
:class:`GeminiStream` keeps the state of a stream. Bad client input is refused with a 400 before
anything is sent.

Where Gemini and OpenAI do not line up, the adapter chooses; each choice is documented in the module
that makes it:

- :mod:`.contents`: messages as contents (a conversation of system/developer messages only is a 400);
  :mod:`.media`: images, audio and files as parts.
- :mod:`.chat`: generation config and tools (``parallel_tool_calls: false`` is dropped; schemas go
  out as full JSON Schema).
- :mod:`.responses`: answers, tool call ids carrying the thought signature, finish reasons
  (``RECITATION`` and ``OTHER`` are ``content_filter``) and usage; :mod:`.stream`: the stream.
- :mod:`.embeddings`: batches, and usage estimated at 4 characters a token (Gemini does not count it).
- :mod:`.images`: an answer without an image is an error (400 when Gemini refused, else 502).
- :mod:`.errors`: Google's errors in OpenAI's shape.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from relaygate.context import RequestContext
from relaygate.errors import UpstreamError
from relaygate.providers.base import Endpoint, Provider, json_answer
from relaygate.providers.gemini.chat import chat_request
from relaygate.providers.gemini.embeddings import embed, embeddings_response
from relaygate.providers.gemini.errors import gemini_error
from relaygate.providers.gemini.images import image_request, images_response
from relaygate.providers.gemini.responses import chat_response, split_tool_call_id, usage_of
from relaygate.providers.gemini.stream import GeminiStream
from relaygate.providers.streaming import relay
from relaygate.upstream import UpstreamResponse

__all__ = [
    "GeminiProvider",
    "chat_request",
    "chat_response",
    "embeddings_response",
    "gemini_error",
    "image_request",
    "images_response",
    "split_tool_call_id",
    "usage_of",
]

API_KEY_HEADER = "x-goog-api-key"
MODEL_LIST_PAGES = 10


class GeminiProvider(Provider):
    kind = "gemini"

    def credential_headers(self, key: str) -> dict[str, str]:
        return {API_KEY_HEADER: key}

    def error_for(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return gemini_error(self.name, status, headers, raw)

    def _url(self, model: str, method: str) -> str:
        # Quoted whole: a "/" or ":" in a model name must not reach another path or method.
        return f"{self.base_url}/models/{quote(model, safe='')}:{method}"

    async def open(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> UpstreamResponse:
        if endpoint == "embeddings":
            return await embed(self, self._url(model, "batchEmbedContents"), body, model)
        if endpoint == "images":
            return await self.post(self._url(model, "generateContent"), image_request(body))
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return await self.post(self._url(model, method), chat_request(body))

    def response_body(self, endpoint: Endpoint, raw: bytes, ctx: RequestContext) -> bytes:
        data = json_answer(raw, self.name)
        if endpoint == "embeddings":
            # Already the OpenAI body: open() assembled it from the batches.
            return orjson.dumps(data) if ctx.record_response(data) else raw
        model = ctx.route.model if ctx.route is not None else ""
        created = int(time.time())
        body = images_response(data, created) if endpoint == "images" else chat_response(data, model, created)
        ctx.record_response(body)
        return orjson.dumps(body)

    def stream_frames(
        self, response: UpstreamResponse, ctx: RequestContext, *, usage_chunk: bool
    ) -> AsyncGenerator[bytes, None]:
        return relay(response, GeminiStream(self.name, ctx, usage_chunk=usage_chunk))

    async def fetch_models(self) -> list[str]:
        """Every page of ``models`` (up to :data:`MODEL_LIST_PAGES`), names without their ``models/`` prefix."""
        models: list[str] = []
        token: str | None = None
        for _ in range(MODEL_LIST_PAGES):
            url = self.base_url + "/models?pageSize=1000"
            if token:
                url += "&pageToken=" + quote(token, safe="")
            page = await self.get_json(url)
            for entry in page.get("models") or ():
                name = entry.get("name") if isinstance(entry, dict) else None
                if isinstance(name, str):
                    models.append(name.removeprefix("models/"))
            token = page.get("nextPageToken")
            if not isinstance(token, str) or not token:
                break
        return models
