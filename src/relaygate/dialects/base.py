"""What an inbound dialect is: the interface every API besides Chat Completions implements.

The middlewares (ledger, limits, guards, tracing) and the provider adapters speak one canonical call:
the OpenAI Chat Completions request, answer and stream chunks. A dialect (the Responses API, Anthropic's
Messages, Langbase's images, ...) is a translator at the edge of that call:

- :class:`Dialect` is its configuration: the routes it answers (:class:`DialectRoute`) and how it makes
  an :class:`Exchange` for one request. It holds no per-request state.
- :class:`Exchange` is one request in the dialect, kept on the context (``ctx.dialect``): it turns the
  caller's body into the canonical request (:meth:`Exchange.canonical`), the canonical answer, stream and
  errors back into the dialect (:meth:`Exchange.answer`, :meth:`Exchange.stream`, :meth:`Exchange.error`),
  and says for each attempt whether the target speaks the dialect itself (:meth:`Exchange.attempt`), in
  which case the caller's own body goes upstream and the answer comes back as the provider wrote it.
- :class:`StreamTranslator` is one stream's state: canonical chunks in, the dialect's events out.

:class:`~relaygate.dialects.middleware.DialectMiddleware` calls all of this; see it for where it sits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from starlette.types import Receive, Scope, Send

from relaygate.errors import GatewayError, NotFoundError
from relaygate.routes import Route

if TYPE_CHECKING:
    from relaygate.context import RequestContext
    from relaygate.providers.base import Provider
    from relaygate.providers.streaming import StreamMapper
    from relaygate.routing import Target

__all__ = ["Dialect", "DialectRoute", "Exchange", "NativeRequest", "StreamTranslator", "sse_event"]

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DialectRoute:
    """A route of a dialect.

    ``path`` is a regular expression (no ``^`` or ``$``; a trailing ``/`` is allowed anyway) of the path
    below any mount point and ``/{project_id}`` prefix, e.g. ``r"/v1/responses/(?P<id>[^/]{1,256})"``; its
    named groups reach the exchange as ``params``. A model call names its ``canonical`` endpoint path
    (``/v1/chat/completions``, ``/v1/images/generations``): the layers inside see the request there, so the
    ledger, limits and guards treat it as that call. A route without one is answered by the dialect itself
    (:meth:`Exchange.serve`), after auth, with the caller's project on the context.
    """

    method: str
    path: str
    canonical: str | None = None
    name: str = ""
    # What the OpenAPI document says of it (see relaygate.routes); a route without one is refused at start-up.
    doc: Route | None = None


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """An attempt in the dialect itself, for a provider that speaks it (see :meth:`Exchange.attempt`).

    ``body`` is POSTed to the provider's ``base_url`` + ``path`` with its usual credentials and ``headers``
    added; ``content``, when given, is sent instead of ``body`` serialized (for a dialect that must send the
    caller's bytes as they came, its model name replaced; ``body`` is then the same request, parsed).

    The answer goes to the client as the provider wrote it; the context still learns the canonical
    answer, for the ledger, limits, guards and spans: ``answer`` records a whole answer's (and returns the
    bytes to send, usually ``raw`` itself), ``mapper`` makes the stream mapper whose chunks are recorded as a
    native stream's events go by (the frames it writes are dropped: the native bytes are relayed instead).
    """

    path: str
    body: JSON
    answer: Callable[[bytes, RequestContext], bytes]
    mapper: Callable[[RequestContext], StreamMapper]
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None


class Dialect(ABC):
    """An inbound API: its routes and its exchanges. Configuration only; built once by the gateway."""

    name: ClassVar[str]
    routes: ClassVar[tuple[DialectRoute, ...]]

    @abstractmethod
    def exchange(self, ctx: RequestContext, route: DialectRoute, params: dict[str, str]) -> Exchange:
        """The exchange of one request on ``route``."""

    def prepare(self, scope: Scope) -> Scope:
        """The request as the layers inside (auth first) should see it; runs before auth. A dialect whose
        clients send their key elsewhere than ``Authorization: Bearer`` (``x-api-key``) moves it here."""
        return scope


class Exchange(ABC):
    """One request in a dialect; lives on the context as ``ctx.dialect``."""

    def __init__(self, dialect: Dialect, ctx: RequestContext, route: DialectRoute, params: dict[str, str]) -> None:
        self.dialect = dialect
        self.ctx = ctx
        self.route = route
        self.params = params
        # Whether the attempt that answered went to a provider in the dialect itself (set by attempt()):
        # then what leaves the inner layers with a 200 is already in the dialect, and is not translated.
        self.native = False
        # Set by the middleware for a request the route refuses before anything runs (a method it does not
        # allow); sent once auth has passed.
        self.refused: GatewayError | None = None

    @property
    def calls(self) -> bool:
        """Whether the request is a model call (it has a canonical endpoint), rather than a served route."""
        return self.route.canonical is not None

    # --- the request --------------------------------------------------------------------------------------

    @abstractmethod
    async def canonical(self, raw: bytes) -> JSON:
        """The canonical request (a Chat Completions body) for the caller's raw body; bad input is a
        :class:`~relaygate.errors.GatewayError` (400 naming the field). Called once, after auth."""

    def attempt(self, target: Target) -> NativeRequest | None:
        """Called by the fallback before each attempt: the native request when ``target`` speaks the dialect
        and nothing asks for the canonical call (a guard that rewrites or judges it, a virtual model's
        parameter overrides); else ``None``, and the canonical request is sent through the adapter.

        Raises when the request holds what only a native target can serve (a built-in tool, ...).
        """
        native = None
        if not self.ctx.canonical_only and not target.overrides:
            native = self.native_request(target.route.provider, target.route.model)
        if native is None:
            self.check_translatable(target)
        self.native = native is not None
        return native

    def native_request(self, provider: Provider, model: str) -> NativeRequest | None:
        """The request in the dialect for ``provider``'s ``model``, when the provider speaks it."""
        return None

    def check_translatable(self, target: Target) -> None:
        """Raise a 400 naming the field when the request cannot go to ``target`` as a canonical call."""
        return None

    # --- what leaves -----------------------------------------------------------------------------------

    @abstractmethod
    async def answer(self, body: JSON) -> bytes:
        """The dialect's body for the canonical whole answer ``body`` (status 200)."""

    async def native_answer(self, raw: bytes) -> bytes:
        """The body to send for a native whole answer (already in the dialect)."""
        return raw

    @abstractmethod
    def stream(self) -> StreamTranslator:
        """A translator for this request's stream."""

    @abstractmethod
    def error(self, status: int, error: JSON) -> tuple[int, bytes]:
        """The dialect's status and body for an error the inner layers sent: ``error`` is the ``"error"``
        object of the OpenAI-shaped body built in :mod:`relaygate.errors` (``message``, ``type``, ``param``,
        ``code``); auth's refusals, limits' 429s and guards' refusals included."""

    # --- routes the dialect answers itself --------------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a route without a canonical endpoint (``self.route.name`` says which). Errors are raised
        as :class:`~relaygate.errors.GatewayError` and leave through :meth:`error` like any other."""
        raise NotFoundError(f"Invalid URL ({scope['method']} {scope['path']}).", code="unknown_url")


class StreamTranslator(ABC):
    """One stream: the canonical stream's events in, the dialect's SSE bytes out.

    The middleware decodes what the inner layers send (``data:`` frames of ``chat.completion.chunk`` JSON,
    ``data: {"error": ...}``, ``data: [DONE]``) and calls :meth:`chunk`, :meth:`failed` or :meth:`done`;
    once one of the last two has been called, nothing more is. A stream that ends with neither (it cannot
    from the proxy, but a host app's layer might) gets :meth:`cut`. In a native attempt the bytes are
    already in the dialect and go through :meth:`native`.
    """

    @abstractmethod
    def chunk(self, chunk: JSON) -> bytes:
        """Events for one canonical chunk (possibly none)."""

    @abstractmethod
    async def done(self) -> bytes:
        """The last events of a stream that completed."""

    @abstractmethod
    async def failed(self, error: JSON) -> bytes:
        """The last events of a stream that failed: ``error`` is the OpenAI-shaped error object."""

    async def cut(self) -> bytes:
        """The last events of a stream that ended without saying how."""
        return await self.failed(
            {"message": "The stream ended before it was complete.", "type": "server_error", "code": "stream_incomplete"}
        )

    async def native(self, data: bytes, *, last: bool) -> bytes:
        """The bytes to send for ``data``, a read of a native stream (already in the dialect); ``last`` on
        the stream's final read."""
        return data


def sse_event(name: str, payload: JSON) -> bytes:
    """One named server-sent event."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
