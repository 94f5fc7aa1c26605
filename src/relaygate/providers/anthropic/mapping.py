"""The tables between Anthropic's Messages API and the OpenAI chat shape, read in both directions.

The adapter (OpenAI chat -> Anthropic, :mod:`.request`, :mod:`.conversation`; Anthropic answers ->
OpenAI, :mod:`.responses`, :mod:`.stream`, :mod:`.errors`) and the inbound Messages dialect
(:mod:`relaygate.dialects.messages`, the other way round) both read them here, so that a stop reason, a
``tool_choice``, a usage count, an error type or a media block means the same thing whichever way it
crosses the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relaygate.context import sane_count

__all__ = [
    "DOCUMENT_TYPES",
    "ERROR_KINDS",
    "ERROR_STATUSES",
    "FINISH_REASONS",
    "IMAGE_TYPES",
    "MEDIA_TYPE_ALIASES",
    "OVERLOADED_STATUS",
    "STOP_REASONS",
    "TOOL_CHOICES",
    "anthropic_usage",
    "data_url",
    "error_type",
    "finish_reason",
    "media_block",
    "openai_tool_choice",
    "openai_usage",
    "stop_reason",
]

JSON = dict[str, Any]

# --- stop reasons -------------------------------------------------------------------------------------

# Anthropic stop_reason -> OpenAI finish_reason.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# OpenAI finish_reason -> Anthropic stop_reason: where FINISH_REASONS has several, the one an answer of that
# kind most often carries.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: Any, json_mode: bool = False) -> str:
    """The OpenAI finish reason of an Anthropic stop reason."""
    if stop_reason == "tool_use" and json_mode:
        return "stop"  # the tool call was the JSON answer (response_format json_object, emulated)
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def stop_reason(finish: Any) -> str:
    """The Anthropic stop reason of an OpenAI finish reason (``end_turn`` for one it does not know)."""
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


# --- tool_choice ----------------------------------------------------------------------------------------

# OpenAI's tool_choice strings -> Anthropic's tool_choice types; a named function is Anthropic's {"type": "tool"}.
TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
_OPENAI_CHOICES = {anthropic: openai for openai, anthropic in TOOL_CHOICES.items()}


def openai_tool_choice(choice: Mapping[str, Any]) -> str | JSON | None:
    """OpenAI's ``tool_choice`` for an Anthropic one (``None`` for a type it does not know)."""
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return _OPENAI_CHOICES.get(kind) if isinstance(kind, str) else None


# --- usage --------------------------------------------------------------------------------------------


ANTHROPIC_COUNTS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def openai_usage(usage: Mapping[str, Any]) -> JSON:
    """OpenAI usage for Anthropic's, whose ``input_tokens`` leaves out what was read from or written to the cache.

    Figures that are no counts are passed on as sent, not summed: the gateway takes such usage as unknown."""
    if not all(sane_count(usage.get(key)) for key in ANTHROPIC_COUNTS):
        return {
            "prompt_tokens": usage.get("input_tokens"),
            "completion_tokens": usage.get("output_tokens"),
            "prompt_tokens_details": {"cached_tokens": usage.get("cache_read_input_tokens")},
            "cache_creation_input_tokens": usage.get("cache_creation_input_tokens"),
        }
    cache_read = _count(usage.get("cache_read_input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + cache_read + cache_write
    completion = _count(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
        "cache_creation_input_tokens": cache_write,
    }


def anthropic_usage(usage: Mapping[str, Any] | None) -> JSON:
    """Anthropic usage for OpenAI's: the inverse of :func:`openai_usage` (cached tokens leave ``input_tokens``)."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details")
    cache_read = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    prompt = _count(usage.get("prompt_tokens"))
    return {
        "input_tokens": max(prompt - cache_read - cache_write, 0),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": _count(usage.get("completion_tokens")),
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- errors ---------------------------------------------------------------------------------------------

# Anthropic error type -> the OpenAI error type and code it becomes.
ERROR_KINDS: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "provider_auth_error"),
    "permission_error": ("permission_error", "provider_auth_error"),
    "not_found_error": ("invalid_request_error", "model_not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("rate_limit_error", "rate_limit_exceeded"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "api_error": ("server_error", None),
    "overloaded_error": ("server_error", "overloaded"),
    "timeout_error": ("timeout_error", "upstream_timeout"),
}
# Anthropic's own status for overload; OpenAI clients know 503 (the SDKs of both retry it).
OVERLOADED_STATUS = 529
# An HTTP status -> Anthropic's error type for it (https://docs.anthropic.com/en/api/errors).
ERROR_STATUSES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    OVERLOADED_STATUS: "overloaded_error",
}
# OpenAI error codes that say the upstream (or every target) is overloaded: Anthropic's 529.
OVERLOADED_CODES = frozenset({"overloaded", "service_unavailable"})


def error_type(status: int, code: Any = None) -> tuple[int, str]:
    """Anthropic's status and error type for an OpenAI-shaped error of ``status`` and ``code``: the inverse
    of :data:`ERROR_KINDS` (an overload is a 529 ``overloaded_error``; other statuses keep their number)."""
    if (isinstance(code, str) and code in OVERLOADED_CODES) or status == OVERLOADED_STATUS:
        return OVERLOADED_STATUS, "overloaded_error"
    kind = ERROR_STATUSES.get(status)
    if kind is None:
        kind = "api_error" if status >= 500 else "invalid_request_error"
    return status, kind


# --- media ----------------------------------------------------------------------------------------------

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
DOCUMENT_TYPES = frozenset({"application/pdf"})
MEDIA_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


def media_block(media_type: str, data: str) -> JSON | None:
    """Anthropic's block for base64 ``data`` of ``media_type`` (an image or a PDF), ``None`` for another type."""
    source = {"type": "base64", "media_type": media_type, "data": data}
    if media_type in IMAGE_TYPES:
        return {"type": "image", "source": source}
    if media_type in DOCUMENT_TYPES:
        return {"type": "document", "source": source}
    return None


def data_url(source: Mapping[str, Any]) -> str:
    """The ``data:`` URL of a base64 source (``{"type": "base64", "media_type", "data"}``): the inverse of
    :func:`media_block`."""
    media_type = str(source.get("media_type") or "")
    return f"data:{MEDIA_TYPE_ALIASES.get(media_type, media_type)};base64,{source.get('data') or ''}"
