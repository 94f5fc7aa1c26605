"""What the proxy needs from a provider adapter, and the plumbing the HTTP adapters share.

An adapter maps the OpenAI request to the provider's (URL, headers, body), the provider's answer back
to OpenAI bytes, its stream to OpenAI ``data:`` frames, and its errors to :class:`UpstreamError`.
The proxy owns everything ASGI: reading, sending, time limits, disconnects and error framing.

:class:`Provider` also holds what every adapter does the same way: JSON headers with the adapter's
credentials (which the config's ``headers`` may override), sending a request and turning an error
status into the provider's error (:meth:`Provider.error_for`), and the model list, which is the
configured one or else the upstream's (:meth:`Provider.fetch_models`), cached by :class:`ModelList`.

The headers are prepared once. A request that brings the caller's own provider key gets a view of the
provider with that key as its credential (:meth:`Provider.keyed`): same pool, same settings, only the
headers differ.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import orjson

from relaygate.context import RequestContext
from relaygate.errors import UpstreamError
from relaygate.providers.errors import upstream_error
from relaygate.providers.listing import ModelList
from relaygate.settings import DEFAULT_BASE_URLS, ProviderSettings
from relaygate.upstream import UpstreamClient, UpstreamRequest, UpstreamResponse

if TYPE_CHECKING:
    from relaygate.dialects.base import NativeRequest

__all__ = ["CREDENTIAL_HEADERS", "Endpoint", "Provider", "json_answer", "read_all"]

Endpoint = Literal["chat", "embeddings", "images"]
# Headers that carry a credential, whoever set them (the adapter, or the config's ``headers``): a keyed view
# of a provider sends none of the configured ones.
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})


class Provider(ABC):
    kind: str = ""

    def __init__(self, name: str, settings: ProviderSettings, client: UpstreamClient) -> None:
        self.name = name
        self.settings = settings
        self.client = client
        self._models = frozenset(settings.models) if settings.models is not None else None
        self.base_url = settings.base_url or DEFAULT_BASE_URLS.get(self.kind, "")
        # The config's own headers come last: they may override the adapter's (another key, another version).
        self.headers = {
            "content-type": "application/json",
            **self.upstream_headers(),
            **{key.lower(): value for key, value in settings.headers.items()},
        }
        # The warnings about this provider logged so far, each once (out-of-range usage); shared with its
        # keyed views.
        self.warnings: set[str] = set()
        # Whether this is a view carrying a caller's key (see keyed()).
        self.caller_keyed = False
        self._model_list = ModelList(name, self.fetch_models)

    def accepts(self, model: str) -> bool:
        """Whether ``model`` (without the provider prefix) may be routed here."""
        return self._models is None or model in self._models

    async def list_models(self) -> list[str]:
        """The configured models, else the upstream's own list (cached; empty when it cannot be had)."""
        if self.settings.models is not None:
            return list(self.settings.models)
        return await self._model_list.get()

    async def fetch_models(self) -> list[str]:
        """Ask the upstream which models it serves; called only when the config names none."""
        return []

    @property
    def first_chunk_timeout(self) -> float:
        return self.settings.timeouts.first_chunk

    @abstractmethod
    async def open(self, endpoint: Endpoint, body: dict[str, Any], model: str, *, stream: bool) -> UpstreamResponse:
        """Send the request; return the response once its status is a success, else raise its error."""

    @abstractmethod
    def response_body(self, endpoint: Endpoint, raw: bytes, ctx: RequestContext) -> bytes:
        """The OpenAI body to send for a whole (non-streamed) upstream answer; records it on ``ctx``."""

    @abstractmethod
    def stream_frames(
        self, response: UpstreamResponse, ctx: RequestContext, *, usage_chunk: bool
    ) -> AsyncGenerator[bytes, None]:
        """OpenAI SSE frames for an upstream stream, ending with ``data: [DONE]`` or an error frame."""

    async def open_native(self, native: NativeRequest) -> UpstreamResponse:
        """Send a request in an inbound dialect the provider speaks itself (see relaygate.dialects), with
        the provider's credentials; the response once its status is a success, else its error raised."""
        return await self.post(self.base_url + native.path, native.body, headers=native.headers, content=native.content)

    async def start(self) -> None:
        await self.client.start()

    async def aclose(self) -> None:
        await self.client.aclose()

    def keyed(self, key: str) -> Provider:
        """This provider with ``key`` (a caller's own) as its credential instead of the configured one: a
        shallow view sharing the connection pool and everything else, whose headers carry no configured
        credential. Made per request; cheap (one dict)."""
        view = copy.copy(self)
        view.headers = {
            **{name: value for name, value in self.headers.items() if name not in CREDENTIAL_HEADERS},
            **self.credential_headers(key),
        }
        view.caller_keyed = True
        return view

    # --- HTTP plumbing for the adapters ----------------------------------------------------------------

    def credential_headers(self, key: str) -> dict[str, str]:
        """The headers that present ``key`` to the provider (OpenAI's ``Authorization: Bearer``)."""
        return {"authorization": f"Bearer {key}"}

    def upstream_headers(self) -> dict[str, str]:
        """The adapter's own request headers (credentials, API version); the config's ``headers`` override them."""
        api_key = self.settings.api_key
        return {} if api_key is None else self.credential_headers(api_key.get_secret_value())

    def error_for(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        """The provider's error answer as an OpenAI-shaped error."""
        return upstream_error(self.name, status, headers, raw)

    async def post(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> UpstreamResponse:
        """POST ``payload`` as JSON (or ``content``, the same already serialized), ``headers`` added to the
        provider's own; the response once its status is a success, else its error raised."""
        return await self.post_bytes(url, orjson.dumps(payload) if content is None else content, headers=headers)

    async def post_bytes(
        self, url: str, content: bytes, *, headers: Mapping[str, str] | None = None
    ) -> UpstreamResponse:
        """POST ``content`` as it is (a multipart form, say: ``headers`` give its content type)."""
        sent = self.headers if not headers else {**self.headers, **headers}
        response = await self.client.send(UpstreamRequest("POST", url, sent, content))
        if response.status >= 400:
            raise self.error_for(response.status, response.headers, await read_all(response))
        return response

    async def get_json(self, url: str) -> Any:
        """The JSON body of ``GET url``; any status but 200 is an error."""
        response = await self.client.send(UpstreamRequest("GET", url, self.headers))
        raw = await read_all(response)
        if response.status != 200:
            raise UpstreamError(f"status {response.status}")
        return orjson.loads(raw)


async def read_all(response: UpstreamResponse) -> bytes:
    """The whole body of ``response``, which is released either way."""
    try:
        return await response.read()
    finally:
        await response.aclose()


def json_answer(raw: bytes, provider: str) -> dict[str, Any]:
    """An upstream answer's body as a JSON object; anything else is the provider's failure (502)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"Provider '{provider}' answered with a body that is not JSON.") from None
    if not isinstance(data, dict):
        raise UpstreamError(f"Provider '{provider}' answered with JSON that is not an object.")
    return data
