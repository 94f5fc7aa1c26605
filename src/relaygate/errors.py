"""One OpenAI-shaped error body for everything relaygate refuses or fails at.

Every error leaves as ``{"error": {"message", "type", "param", "code"}}`` with the status of its class.
Before ``http.response.start`` it is a JSON response (:func:`send_error`); after it, on a stream, it is
a final ``data: {"error": ...}`` event (:func:`sse_error_frame`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence

import orjson
from starlette.types import Scope, Send
from typing_extensions import TypedDict

__all__ = [
    "Refuse",
    "AuthenticationError",
    "ClientDisconnected",
    "DeadlineExceededError",
    "ErrorBody",
    "ErrorDetail",
    "GatewayError",
    "GuardError",
    "GuardViolationError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "ModelNotFoundError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "ServiceUnavailableError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "clip_echoes",
    "error_frame",
    "send_error",
    "send_refusal",
    "sse_error_frame",
]


class ErrorDetail(TypedDict):
    """What went wrong: ``type`` is the kind (``invalid_request_error``, ``permission_error``, ``requests``,
    ``insufficient_quota``, ``server_error``, ``upstream_error``, ``timeout_error``), ``code`` the precise
    reason (``invalid_api_key``, ``model_not_found``, ``guard_violation``, ``ledger_off``, ...), ``param``
    the parameter or header at fault."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(TypedDict):
    """Every error relaygate answers, whatever its status (OpenAI's shape)."""

    error: ErrorDetail


# What an error echoes of the caller (ids, paths, model names; a provider's text) is cut: a word of more than
# ECHO_WORD characters keeps that many, a message more than ECHO_MESSAGE.
ECHO_WORD = 200
ECHO_MESSAGE = 4000
_LONG_WORD = re.compile(rf"\S{{{ECHO_WORD + 1},}}")


def clip_echoes(text: str) -> str:
    """``text`` with over-long words (a 10,000-character thread id) cut and marked ``…``, and at most
    ``ECHO_MESSAGE`` characters long."""
    if len(text) <= ECHO_WORD:
        return text
    text = _LONG_WORD.sub(lambda match: match.group()[:ECHO_WORD] + "…", text)
    return text if len(text) <= ECHO_MESSAGE else text[:ECHO_MESSAGE] + "…"


class GatewayError(Exception):
    """An error with an HTTP status and an OpenAI-shaped body."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        type: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        message = clip_echoes(message)
        super().__init__(message)
        self.message = message
        self.param = clip_echoes(param) if param is not None else None
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.headers = list(headers)

    def body(self) -> ErrorBody:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"


class RequestTimeoutError(GatewayError):
    """The client did not send its request in time (``relaygate serve``'s ``server.body_timeout``)."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class AuthenticationError(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFoundError(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class MethodNotAllowedError(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLargeError(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimitError(GatewayError):
    """A rate limit was reached; the call succeeds after ``Retry-After``. ``type`` is ``requests`` or ``tokens``."""

    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class QuotaExceededError(GatewayError):
    """A budget is spent; retrying does not help before its period ends."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class ServerError(GatewayError):
    status = 500
    type = "server_error"


class GuardViolationError(InvalidRequestError):
    """A guard refused the request or the answer; 446 instead of 400 when configured (LangDB's status)."""

    code = "guard_violation"


class GuardError(ServerError):
    """A guard could not judge (its model failed, its code raised): the call is refused, not let through."""

    code = "guard_error"


class ServiceUnavailableError(GatewayError):
    """Nothing can answer now (every target cooling down, the limit counters unreachable); say when to come back."""

    status = 503
    type = "server_error"
    code = "service_unavailable"


class UpstreamError(GatewayError):
    """The provider answered with an error; the status is the provider's."""

    status = 502
    type = "upstream_error"


class UpstreamConnectionError(UpstreamError):
    status = 502
    code = "upstream_connection_error"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    type = "timeout_error"
    code = "upstream_timeout"


class DeadlineExceededError(UpstreamTimeoutError):
    """No target answered within the request's ``retry.deadline``: an attempt still running when it
    passed was cut off, or it left no time for one. 504, as for any upstream that is too slow: the
    gateway got no timely answer from upstream (408 would say the client was too slow to send)."""

    code = "deadline_exceeded"


class ClientDisconnected(Exception):
    """The client went away; nothing more can be sent to it."""


def error_frame(error: GatewayError) -> bytes:
    return orjson.dumps(error.body())


def sse_error_frame(error: GatewayError) -> bytes:
    return b"data: " + error_frame(error) + b"\n\n"


# How a layer sends a refusal it makes before the request reaches the app (see send_refusal).
Refuse = Callable[[Scope, Send, GatewayError, Sequence[tuple[bytes, bytes]]], Awaitable[None]]


async def send_refusal(scope: Scope, send: Send, error: GatewayError, headers: Sequence[tuple[bytes, bytes]]) -> None:
    """The default :data:`Refuse`: :func:`send_error`, whatever the path (the gateway gives the outer layers
    :meth:`relaygate.dialects.DialectMiddleware.refuse`, which answers a dialect's routes in its shape)."""
    await send_error(send, error, headers)


async def send_error(send: Send, error: GatewayError, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send ``error`` as a whole JSON response; only valid before ``http.response.start``."""
    body = error_frame(error)
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *error.headers,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
