"""Upstream errors in OpenAI's shape: the mapping every adapter starts from.

An error answer keeps the provider's status, message, type, param and code where it gives them. A 401
or 403 names the gateway's provider credential (the client's own key was fine), 404 and 429 get OpenAI's
codes, and the headers OpenAI SDKs read before retrying are passed on. Adapters whose providers answer
in another shape (Anthropic, Gemini) rewrite their errors into this one first.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.errors import UpstreamError

__all__ = ["KEPT_ERROR_HEADERS", "not_a_stream", "provider_failure", "stream_error", "upstream_error"]

# Headers of an upstream error worth handing to the client: OpenAI SDKs honour them when retrying.
KEPT_ERROR_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")


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


def not_a_stream(provider: str, content_type: str, head: bytes) -> UpstreamError:
    """A streamed request answered with a success status and a body holding no event (``head`` is its
    start): an HTML error page, a JSON error, nothing. The provider failed (502), whatever its status said."""
    kind = content_type.partition(";")[0].strip() or "no content type"
    detail = ""
    try:
        data = orjson.loads(head)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("error"):
        detail = ": " + upstream_error(provider, 502, {}, head).message
    elif not head.strip():
        kind = "an empty body"
    return UpstreamError(
        f"upstream '{provider}' answered a streamed request with a body that is not an event stream ({kind}){detail}",
        code="upstream_invalid_stream",
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
        message = _excerpt(text) if text else f"Provider '{provider}' answered with status {status}."
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


def _excerpt(text: str, limit: int = 1000) -> str:
    """At most ``limit`` characters of ``text``, cut between words: a credential cut in two would no longer
    be recognised as one when the text is scrubbed (relaygate.secrets)."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    cut = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    return head[:cut].rstrip() + " ..." if cut > 0 else "(a body of " + str(len(text)) + " characters)"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


ERROR_EVENT = b'data: {"error"'
# Error types of a stream's first event that say the provider failed (OpenAI's, and the adapters' mappings
# of Anthropic's overloaded, api and rate-limit errors and Gemini's statuses).
PROVIDER_FAILURE_TYPES = frozenset({"server_error", "upstream_error", "rate_limit_error", "timeout_error"})


def provider_failure(first: bytes, provider: str) -> UpstreamError | None:
    """The error of a stream whose first event says the provider failed (overloaded, rate limited, a
    server error), as an error with a status to retry; ``None`` for any other first frame, which is
    relayed as it is (an error event of another kind, e.g. a guard's refusal, is never retried)."""
    if not first.startswith(ERROR_EVENT):
        return None
    try:
        payload = orjson.loads(first[len(b"data: ") :])
    except orjson.JSONDecodeError:
        return None
    error = stream_error(provider, payload.get("error") if isinstance(payload, dict) else None)
    if error.type not in PROVIDER_FAILURE_TYPES:
        return None
    error.status = 429 if error.type == "rate_limit_error" else 503
    return error
