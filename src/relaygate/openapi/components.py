"""The parts of the OpenAPI document every route shares: security schemes, headers, errors and tags."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ERROR_RESPONSES",
    "MODEL_CALL_HEADERS",
    "OTHER_ERRORS",
    "PARAMETERS",
    "PATH_PARAMETERS",
    "PROJECT_PARAMETER",
    "RESPONSE_HEADERS",
    "SECURITY_SCHEMES",
    "TAGS",
    "TRACE_PARAMETERS",
]

Json = dict[str, Any]

SECURITY_SCHEMES: Json = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "A project's API key, as `Authorization: Bearer <key>`. A gateway with no keys configured (the "
            "embedded default) accepts every call into project `default`."
        ),
    },
    "adminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Admin-Key",
        "description": "The gateway's `admin_key`, for `/admin/...` and `/projects/...`; without one those answer 403.",
    },
}

_ID_HEADER: Json = {"type": "string", "minLength": 1, "maxLength": 256}
# ProjectScopeMiddleware's project prefix; "v1" would read as no project at all.
PROJECT_ID_SCHEMA: Json = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$",
    "not": {"const": "v1"},
}

# Request headers every route reads (TracingMiddleware and ProjectScopeMiddleware), by component name.
PARAMETERS: Json = {
    "ProjectIdHeader": {
        "name": "X-Project-Id",
        "in": "header",
        "required": False,
        "description": (
            "The project the call is for. Optional when the path names it (`/{project_id}/v1/...`) or the key "
            "belongs to one project; a project the key may not use is a 403, one that differs from the path's a 400."
        ),
        "schema": {"type": "string"},
        "example": "default",
    },
    "ThreadIdHeader": {
        "name": "X-Thread-Id",
        "in": "header",
        "required": False,
        "description": "Groups calls into a conversation thread (ledger, traces); echoed back. 1 to 256 characters.",
        "schema": _ID_HEADER,
        "example": "thread-1",
    },
    "RunIdHeader": {
        "name": "X-Run-Id",
        "in": "header",
        "required": False,
        "description": "One run of a workflow (traces); generated when absent, echoed back. 1 to 256 characters.",
        "schema": _ID_HEADER,
    },
    "LabelHeader": {
        "name": "X-Label",
        "in": "header",
        "required": False,
        "description": "A label for the call (ledger, traces, analytics by label). 1 to 256 characters.",
        "schema": _ID_HEADER,
    },
    "TagsHeader": {
        "name": "X-Tags",
        "in": "header",
        "required": False,
        "description": "Tags of the call as `key=value&key2=value2` (ledger, traces, analytics by tag).",
        "schema": _ID_HEADER,
    },
}
# What every route reads (TracingMiddleware refuses an over-long one); the project matters to keyed routes only.
TRACE_PARAMETERS = [{"$ref": f"#/components/parameters/{name}"} for name in PARAMETERS if name != "ProjectIdHeader"]
PROJECT_PARAMETER = {"$ref": "#/components/parameters/ProjectIdHeader"}

PATH_PARAMETERS: dict[str, Json] = {
    "project_id": {
        "description": "The project the call is for, instead of X-Project-Id.",
        "schema": PROJECT_ID_SCHEMA,
        "example": "default",
    },
    "model": {
        "description": "A model id from `GET /v1/models` (`mock/echo`); its `/` may be sent as is.",
        "schema": {"type": "string", "minLength": 1},
        "example": "mock/echo",
    },
    "response_id": {
        "description": "A stored response's id (`resp_...`).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    },
    "thread_id": {
        "description": "A thread's id, as sent in X-Thread-Id (percent-encode a `/`).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
        "example": "thread-1",
    },
}
# A path parameter no entry above describes.
ANY_PATH_PARAMETER: Json = {"schema": {"type": "string", "minLength": 1, "maxLength": 256}}
# The project of /projects/{project_id}/custom_prices: one of the config's projects.
CONFIG_PROJECT: Json = {
    "description": "A project of the gateway's config.",
    "example": "default",
    "schema": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^/]+$"},
}


def _header(description: str, schema: Json | None = None) -> Json:
    return {"description": description, "schema": schema or {"type": "string"}}


_NUMBER: Json = {"type": "string", "pattern": "^[0-9]+$"}
# Response headers, by component name.
RESPONSE_HEADERS: Json = {
    "X-Trace-Id": _header("The request's trace id (32 hex digits): the OpenTelemetry trace id when tracing is on."),
    "X-Run-Id": _header("The run id the call was given, or the one generated for it."),
    "X-Thread-Id": _header("The thread id the call was sent with, when it had one."),
    "X-Provider-Name": _header("The provider that answered (or failed), once routing chose one."),
    "X-Model-Name": _header("The provider's model that answered (or failed)."),
    "X-Cost-Usd": _header(
        "The call's cost in USD (plain decimal), when the ledger is on and the cost is known as the answer "
        "starts (a whole answer of a priced model).",
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
    ),
    "X-Relaygate-Attempts": _header("How many provider calls the answer took (retries and fallbacks).", _NUMBER),
    "Retry-After": _header("Seconds to wait before retrying.", _NUMBER),
    "X-Should-Retry": _header("`false` when retrying cannot help before the budget's period ends."),
    "Allow": _header("The methods the path accepts."),
}
# Every answer carries these (TracingMiddleware adds them, error answers included).
TRACE_HEADERS = ("X-Trace-Id", "X-Run-Id", "X-Thread-Id")
# Model calls' answers also say who answered.
MODEL_CALL_HEADERS = ("X-Provider-Name", "X-Model-Name", "X-Relaygate-Attempts", "X-Cost-Usd")


def headers_of(names: tuple[str, ...]) -> Json:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


ERROR_SCHEMA_REF = "#/components/schemas/ErrorBody"

_ERRORS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: (
        "BadRequest",
        "The request is malformed: not a JSON object, a missing or invalid parameter (`param` names it), an "
        "over-long X-Thread-Id/X-Run-Id/X-Label/X-Tags, a path and X-Project-Id naming different projects, a key "
        "of several projects with none named, or a guard's refusal (`guard_violation`) where guards answer 400.",
        (),
    ),
    401: ("Unauthorized", "No API key, or an unknown one (`invalid_api_key`); for admin routes, the admin key.", ()),
    403: (
        "Forbidden",
        "The key may not be used for the project named, or the admin API is off (no `admin_key` configured).",
        (),
    ),
    404: (
        "NotFound",
        "No such model (`model_not_found`), thread (`thread_not_found`) or project (`project_not_found`); the "
        "management API with the ledger off (`ledger_off`); a path the gateway does not serve (`unknown_url`).",
        (),
    ),
    405: ("MethodNotAllowed", "The path exists but not with this method; `Allow` lists those it has.", ("Allow",)),
    413: ("PayloadTooLarge", "The body is over `max_body_bytes` (`request_too_large`).", ()),
    429: (
        "TooManyRequests",
        "A rate limit was reached (`type` `requests` or `tokens`; retry after `Retry-After` seconds) or a budget is "
        "spent (`insufficient_quota`, with `X-Should-Retry: false`), or the provider rate-limited the call.",
        ("Retry-After", "X-Should-Retry"),
    ),
    446: (
        "GuardViolation",
        "A guard refused the request or the answer (`guard_violation`), where guards are configured to answer "
        "446 (LangDB's status) instead of 400.",
        (),
    ),
    500: ("GuardFailed", "A guard could not judge the call (`guard_error`): it is refused, not let through.", ()),
    502: (
        "BadGateway",
        "The provider failed the call (`upstream_error`) or could not be reached (`upstream_connection_error`).",
        (),
    ),
    503: (
        "ServiceUnavailable",
        "Nothing can answer now: every target cooling down, the limit counters unreachable, or the ledger not "
        "started or its database failing (`service_unavailable`); `Retry-After` says when to come back.",
        ("Retry-After",),
    ),
    504: (
        "GatewayTimeout",
        "The provider did not answer in time (`upstream_timeout`), or the call's deadline passed "
        "(`deadline_exceeded`).",
        (),
    ),
}

ERROR_RESPONSES: Json = {
    name: {
        "description": description,
        "headers": headers_of((*TRACE_HEADERS, *extra)),
        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
    }
    for name, description, extra in _ERRORS.values()
}
ERROR_NAMES = {status: name for status, (name, _, _) in _ERRORS.items()}
# Statuses only a route with errors of its own shape answers (Route.error_body).
OTHER_ERRORS: dict[int, Json] = {
    406: {
        "description": "MCP's transport: the request does not accept `application/json` (its `Accept` header).",
        "headers": headers_of(TRACE_HEADERS),
    },
    415: {
        "description": "MCP's transport: the body is not `application/json` (its `Content-Type` header).",
        "headers": headers_of(TRACE_HEADERS),
    },
    529: {
        "description": "Anthropic's overload status (`overloaded_error`): the provider is overloaded, or every "
        "target is cooling down; retry later.",
        "headers": headers_of((*TRACE_HEADERS, "Retry-After")),
    },
}

TAGS: dict[str, str] = {
    "Model calls": "OpenAI-compatible calls routed to any provider, through guards, limits, the ledger and tracing.",
    "Models": "The models the gateway can call.",
    "MCP": "The configured MCP servers' tools, served to MCP clients (streamable HTTP) behind the gateway's keys.",
    "Messages API": "Anthropic's Messages API (the anthropic SDKs, Claude Code) in front of every provider.",
    "Threads": "Conversations recorded by the ledger (calls sent with X-Thread-Id).",
    "Analytics": "Cost, tokens and calls over time, from the ledger.",
    "Usage": "Totals of the project's usage, from the ledger.",
    "Pricing": "The prices calls are costed at.",
    "Admin": "The model registry and projects' custom prices; these need X-Admin-Key.",
    "Service": "Health and this document.",
}
