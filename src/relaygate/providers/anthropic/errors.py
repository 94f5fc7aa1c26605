"""Anthropic's errors in OpenAI's shape, from an error answer or a mid-stream ``error`` event.

Anthropic answers ``{"type": "error", "error": {"type", "message"}}``; its error type picks the OpenAI
type and code (``ERROR_KINDS`` of :mod:`.mapping`). Its own overload status, 529, becomes the 503 that
OpenAI clients know (the SDKs retry both). The ``error_code`` in ``error.details`` of a spend limit
reached, which retrying will not clear, is kept as the code, and Anthropic's ``request-id`` goes on as
``x-request-id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from relaygate.errors import UpstreamError
from relaygate.providers.anthropic.mapping import ERROR_KINDS, OVERLOADED_STATUS
from relaygate.providers.errors import stream_error, upstream_error

__all__ = ["ERROR_KINDS", "anthropic_error", "stream_failure"]


def anthropic_error(provider: str, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    """Anthropic's error (``{"type": "error", "error": {"type", "message"}}``) in the OpenAI shape."""
    base = upstream_error(provider, status, headers, raw)
    kind = ERROR_KINDS["overloaded_error"] if status == OVERLOADED_STATUS else ERROR_KINDS.get(base.type)
    type_, code = kind if kind is not None else (base.type, None)
    code = _spend_limit_code(raw) or base.code or code
    kept = list(base.headers)
    request_id = headers.get("request-id")
    if request_id:
        kept.append((b"x-request-id", request_id.encode("latin-1", errors="replace")))
    return UpstreamError(
        base.message,
        status=503 if status == OVERLOADED_STATUS else base.status,
        type=type_,
        param=base.param,
        code=code,
        headers=kept,
    )


def stream_failure(provider: str, error: Any) -> UpstreamError:
    """The ``error`` of a mid-stream ``error`` event, with the OpenAI type and code of its Anthropic type."""
    if not isinstance(error, dict):
        return stream_error(provider, error)
    type_, code = ERROR_KINDS.get(str(error.get("type")), (error.get("type") or "upstream_error", None))
    return stream_error(provider, {"message": error.get("message"), "type": type_, "code": code})


def _spend_limit_code(raw: bytes) -> str | None:
    """``error.details.error_code`` of a 429 that retrying will not clear (a spend limit reached)."""
    try:
        details = orjson.loads(raw)["error"]["details"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    code = details.get("error_code") if isinstance(details, dict) else None
    return code if isinstance(code, str) else None
