"""Langbase's Images API inbound: ``POST /v1/images`` in front of every provider that makes images.

The request (``model`` as ``provider:model``, ``prompt``, ``width``, ``height``, ``n``, ``steps``,
``image_url``) becomes the canonical ``/v1/images/generations`` call (:mod:`.request`), so that the ledger
prices it as an images call, the limits reserve its images, the guards judge its prompt and every
provider's adapter maps it to that provider's own API; the answer comes back in Langbase's
``chat.completion`` shape with the images in ``message.images`` (:mod:`.answer`). Errors keep OpenAI's
shape, which Langbase's API uses too. The caller's own provider key (``LB-LLM-Key``) is taken care of by
:class:`~relaygate.middleware.byok.ProviderKeyMiddleware`, as on every model endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from relaygate.dialects.base import Dialect, DialectRoute, Exchange, StreamTranslator
from relaygate.dialects.images.answer import images_answer
from relaygate.dialects.images.request import canonical_request, split_model
from relaygate.dialects.images.shapes import ImagesAnswer, ImagesRequest
from relaygate.ids import new_hex
from relaygate.requests import parse_json_object
from relaygate.routes import Route
from relaygate.settings import configured_name

if TYPE_CHECKING:
    from relaygate.context import RequestContext

__all__ = ["ImagesDialect", "ImagesExchange"]

JSON = dict[str, Any]

GENERATE = Route(
    "POST",
    "/v1/images",
    "generateImages",
    "Generate images (Langbase's Images API)",
    "Images",
    description=(
        "Langbase's Images API: `model` as `provider:model`, `prompt`, `width` and `height`, `n`, `steps` and "
        "`image_url` (image-to-image). The answer is a `chat.completion` with one choice per image, the image in "
        "`message.images`. `LB-LLM-Key` (or `X-Provider-Key`) carries the caller's own provider key, in projects "
        "with `byok: true`."
    ),
    body=ImagesRequest,
    answer=ImagesAnswer,
    model_call=True,
    examples={"prompt": {"model": "mock:image", "prompt": "A lighthouse at dusk", "width": 256, "height": 256}},
)


class ImagesDialect(Dialect):
    """``POST /v1/images``, as Langbase's Images API; ``providers`` are the configured providers' names."""

    name: ClassVar[str] = "images"
    routes: ClassVar[tuple[DialectRoute, ...]] = (
        DialectRoute("POST", "/v1/images", canonical="/v1/images/generations", name="generate", doc=GENERATE),
    )

    def __init__(self, *, providers: Collection[str] = ()) -> None:
        self.providers = frozenset(providers)

    def exchange(self, ctx: RequestContext, route: DialectRoute, params: dict[str, str]) -> ImagesExchange:
        return ImagesExchange(self, ctx, route, params)


class ImagesExchange(Exchange):
    dialect: ImagesDialect

    def __init__(
        self, dialect: ImagesDialect, ctx: RequestContext, route: DialectRoute, params: dict[str, str]
    ) -> None:
        super().__init__(dialect, ctx, route, params)
        self.model = ""
        self.created = int(time.time())

    async def canonical(self, raw: bytes) -> JSON:
        body = canonical_request(parse_json_object(raw), self.dialect.providers)
        self.model = body["model"]
        return body

    async def answer(self, body: JSON) -> bytes:
        return orjson.dumps(
            images_answer(
                body,
                answer_id=f"chatcmpl-{new_hex()[:24]}",
                provider=self._provider(),
                model=self.ctx.route.model if self.ctx.route is not None else split_model(self.model)[1],
                created=self.created,
                cost=self.ctx.cost_usd,
            )
        )

    def _provider(self) -> str:
        """The provider that answered, by the name the caller used for it (``google`` for ``gemini``)."""
        prefix, _ = split_model(self.model)
        route = self.ctx.route
        if route is None:
            return prefix or ""
        name = route.provider.name
        if prefix is not None and configured_name(prefix, (name,)) == name:
            return prefix
        return name

    def stream(self) -> StreamTranslator:
        return _NoStream()

    def error(self, status: int, error: JSON) -> tuple[int, bytes]:
        return status, orjson.dumps({"error": error})


class _NoStream(StreamTranslator):
    """Image calls are never streamed (the request refuses ``stream``); nothing to translate."""

    def chunk(self, chunk: JSON) -> bytes:
        return b""

    async def done(self) -> bytes:
        return b""

    async def failed(self, error: JSON) -> bytes:
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
