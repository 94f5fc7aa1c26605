"""Gemini's errors in OpenAI's shape, from an error answer or an error event inside a stream.

Google answers ``{"error": {code, message, status, details}}``. The gRPC ``status`` becomes the code
(404 and 429 get OpenAI's own), a ``RetryInfo`` delay becomes ``retry-after``, and a bad or expired key
(which Google answers with 400 ``INVALID_ARGUMENT``) is a 401: for the client it is the gateway's
credential that failed. A body of another shape (a proxy's page, say) is mapped as any provider's.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from relaygate.errors import UpstreamError
from relaygate.providers.errors import KEPT_ERROR_HEADERS, upstream_error

__all__ = ["gemini_error", "retry_after", "stream_error"]

# Google says 400 INVALID_ARGUMENT for a bad key; for the client it is the gateway's credential that failed.
KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})


def gemini_error(provider: str, status: int, headers: Any, raw: bytes) -> UpstreamError:
    """Gemini's ``{"error": {code, message, status, details}}`` as an OpenAI-shaped error."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return upstream_error(provider, status, headers, raw)  # not Google's shape: a proxy's page, say
    details = [item for item in error.get("details") or () if isinstance(item, dict)]
    if {item.get("reason") for item in details} & KEY_REASONS:
        status = 401
    kept = {name: headers[name] for name in KEPT_ERROR_HEADERS if name in headers}
    delay = retry_after(details)
    if delay is not None:
        kept["retry-after"] = delay
    grpc = error.get("status")
    # 404 and 429 get OpenAI's own codes (model_not_found, rate_limit_exceeded) from upstream_error.
    code = grpc.lower() if isinstance(grpc, str) and grpc and status not in (404, 429) else None
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"Provider '{provider}' answered with status {status}."
    return upstream_error(provider, status, kept, orjson.dumps({"error": {"message": message, "code": code}}))


def stream_error(provider: str, error: Any) -> UpstreamError:
    """An error event inside a Gemini stream (the status only names the error; the stream is a 200)."""
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    return gemini_error(provider, status, {}, orjson.dumps({"error": error}))


def retry_after(details: list[dict[str, Any]]) -> str | None:
    """Whole seconds from ``google.rpc.RetryInfo.retryDelay`` ("30s", "1.5s"), rounded up."""
    for item in details:
        if not str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            continue
        delay = item.get("retryDelay")
        try:
            if isinstance(delay, str) and delay.endswith("s"):
                seconds = float(delay[:-1])
            elif isinstance(delay, dict):
                seconds = float(delay.get("seconds") or 0) + float(delay.get("nanos") or 0) / 1e9
            else:
                continue
            # A delay that is not a finite number of seconds is no advice; the 429 stands without it.
            return str(max(0, math.ceil(seconds)))
        except (TypeError, ValueError, OverflowError):
            continue
    return None
