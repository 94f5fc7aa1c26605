"""Pass-through to any OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio, OpenRouter, ...).

Bodies go out as they came, with the provider prefix taken off the model and the gateway's own fields
removed. Streams always ask for ``stream_options.include_usage`` so that usage is known; the usage
chunk is dropped again when the client did not ask for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import anyio
import orjson

from relaygate.context import RequestContext
from relaygate.errors import GatewayError, UpstreamError, sse_error_frame
from relaygate.providers.base import Endpoint, Provider
from relaygate.requests import GATEWAY_FIELDS
from relaygate.settings import ProviderSettings
from relaygate.sse import DONE, SSEDecoder, SSEEvent, frame
from relaygate.upstream import UpstreamClient, UpstreamRequest, UpstreamResponse

__all__ = ["OpenAIProvider", "stream_error", "upstream_error"]

logger = logging.getLogger("relaygate.providers")

PATHS: dict[Endpoint, str] = {
    "chat": "/chat/completions",
    "embeddings": "/embeddings",
    "images": "/images/generations",
}
# Headers of an upstream error worth handing to the client: OpenAI SDKs honour them when retrying.
KEPT_ERROR_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
MODEL_LIST_TTL = 300.0
MODEL_LIST_TIMEOUT = 5.0
DONE_FRAME = frame(DONE)
DRAIN_TIMEOUT = 1.0


class OpenAIProvider(Provider):
    kind = "openai"

    def __init__(self, name: str, settings: ProviderSettings, client: UpstreamClient) -> None:
        super().__init__(name, settings, client)
        self.base_url = settings.base_url or ""
        headers = {"content-type": "application/json"}
        if settings.api_key is not None:
            headers["authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        headers.update({key.lower(): value for key, value in settings.headers.items()})
        self._headers = headers
        self._listed: tuple[float, list[str]] | None = None

    def upstream_body(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        out = {key: value for key, value in body.items() if key not in GATEWAY_FIELDS}
        out["model"] = model
        if stream and self.settings.stream_usage:
            options = out.get("stream_options")
            out["stream_options"] = (
                {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
            )
        return out

    async def open(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> UpstreamResponse:
        request = UpstreamRequest(
            "POST",
            self.base_url + PATHS[endpoint],
            self._headers,
            orjson.dumps(self.upstream_body(endpoint, body, model, stream=stream)),
        )
        response = await self.client.send(request)
        if response.status >= 400:
            try:
                raw = await response.read()
            finally:
                await response.aclose()
            raise upstream_error(self.name, response.status, response.headers, raw)
        return response

    def response_body(self, endpoint: Endpoint, raw: bytes, ctx: RequestContext) -> bytes:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"Provider '{self.name}' answered with a body that is not JSON.") from None
        if not isinstance(body, dict):
            raise UpstreamError(f"Provider '{self.name}' answered with JSON that is not an object.")
        ctx.record_response(body)
        return raw

    async def stream_frames(
        self, response: UpstreamResponse, ctx: RequestContext, *, usage_chunk: bool
    ) -> AsyncGenerator[bytes, None]:
        decoder = SSEDecoder()
        async with aclosing(response.iter_raw()) as chunks:
            async for raw in chunks:
                out, ended = self._frames(decoder.feed(raw), ctx, usage_chunk)
                if out:
                    yield out
                if ended:
                    # Reading the body to its end keeps the connection in the pool for the next call.
                    with anyio.move_on_after(DRAIN_TIMEOUT):
                        async for _ in chunks:
                            pass
                    return
        out, ended = self._frames(decoder.close(), ctx, usage_chunk)
        # A stream that closes cleanly without "[DONE]" is complete all the same (some servers omit it).
        yield out if ended else out + DONE_FRAME

    def _frames(self, events: list[SSEEvent], ctx: RequestContext, usage_chunk: bool) -> tuple[bytes, bool]:
        """Frames to forward for ``events``, and whether the stream has ended (done or error)."""
        out = b""
        for data, _ in events:
            if data == DONE:
                return out + DONE_FRAME, True
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                logger.warning("provider %s sent a stream event that is not JSON; skipped", self.name)
                continue
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                error = stream_error(self.name, chunk["error"])
                ctx.error = error.code or error.type
                return out + sse_error_frame(error), True
            ctx.record_chunk(chunk)
            if not usage_chunk and not chunk.get("choices") and chunk.get("usage"):
                continue  # the usage chunk the gateway asked for on its own behalf
            out += frame(data)
        return out, False

    async def list_models(self) -> list[str]:
        if self.settings.models is not None:
            return list(self.settings.models)
        now = time.monotonic()
        if self._listed is not None and now - self._listed[0] < MODEL_LIST_TTL:
            return self._listed[1]
        try:
            with anyio.fail_after(MODEL_LIST_TIMEOUT):
                response = await self.client.send(UpstreamRequest("GET", self.base_url + "/models", self._headers))
                try:
                    raw = await response.read()
                finally:
                    await response.aclose()
            if response.status != 200:
                raise UpstreamError(f"status {response.status}")
            data = orjson.loads(raw)["data"]
            models = [entry["id"] for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)]
        except (GatewayError, TimeoutError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            logger.warning("could not list the models of provider %s: %s", self.name, exc)
            return []
        self._listed = (now, models)
        return models


def stream_error(provider: str, error: Any) -> UpstreamError:
    """An error event inside a provider's stream, in the full OpenAI shape."""
    if not isinstance(error, dict):
        return UpstreamError(_text(error) or f"Provider '{provider}' failed mid-stream.")
    return UpstreamError(
        _text(error.get("message")) or f"Provider '{provider}' failed mid-stream.",
        type=_text(error.get("type")),
        param=_text(error.get("param")),
        code=_text(error.get("code")),
    )


def upstream_error(provider: str, status: int, headers: Any, raw: bytes) -> UpstreamError:
    """The provider's error as an OpenAI-shaped error with the provider's status."""
    message: str | None = None
    type_: str | None = None
    param: str | None = None
    code: str | None = None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = _text(error.get("message") or error.get("detail"))
            type_ = _text(error.get("type"))
            param = _text(error.get("param"))
            code = _text(error.get("code"))
        elif isinstance(error, str):
            message = error
    if not message:
        text = raw.decode("utf-8", errors="replace").strip()
        message = text[:1000] if text else f"Provider '{provider}' answered with status {status}."
    if status in (401, 403):
        # The client's own key was fine: it is the gateway's provider credential that failed.
        message = f"Provider '{provider}' refused the gateway's credentials: {message}"
        code = "provider_auth_error"
    elif status == 404 and code is None:
        code = "model_not_found"
    elif status == 429 and code is None:
        code = "rate_limit_exceeded"
    if type_ is None:
        type_ = "invalid_request_error" if status < 500 else "upstream_error"
    kept = [(name.encode(), headers[name].encode()) for name in KEPT_ERROR_HEADERS if name in headers]
    return UpstreamError(
        message,
        status=status if 400 <= status <= 599 else 502,
        type=type_,
        param=param,
        code=code,
        headers=kept,
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
