"""The OpenAPI 3.1 document of the gateway, built from the routes its apps dispatch on.

Every operation comes from a :class:`~relaygate.routes.Route`; request and answer schemas are generated
by pydantic from the types the route names. A route served below ``/v1`` is also shown in its
``/{project_id}/v1/...`` form. See :mod:`relaygate.routes` for how a new endpoint gets here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from relaygate.errors import ErrorBody
from relaygate.openapi import components as c
from relaygate.routes import Route

__all__ = ["OpenApiDocument", "build_document"]

Json = dict[str, Any]
REF = "#/components/schemas/{model}"

DESCRIPTION = """\
relaygate is an AI gateway: one OpenAI-compatible API in front of many model providers, with keys and
projects, guards, budgets and rate limits, a ledger of cost with threads and analytics, and OpenTelemetry traces.

- **Keys**: `Authorization: Bearer <key>` (a gateway without keys accepts every call); `X-Admin-Key` for
  `/admin/...` and `/projects/...`.
- **Projects**: name the project with `X-Project-Id` or in the path, `/{project_id}/v1/...`; a key of one
  project needs neither.
- **Tracing**: `X-Thread-Id`, `X-Run-Id`, `X-Label` and `X-Tags` are recorded with the call; every answer
  carries `X-Trace-Id`, `X-Run-Id` and the `X-Thread-Id` it was sent with.
- **Errors**: every error is `{"error": {"message", "type", "param", "code"}}`, whatever its status. A method a
  path does not have is a 405 with `Allow`; a path the gateway does not serve is a 404 `unknown_url`.
- The management routes (`/threads`, `/analytics`, `/usage`, `/pricing`, `/admin`, `/projects`) also answer
  below `/v1` (`/v1/threads`).
- The dashboard, `/ui`, is a set of HTML pages signed in by cookie, not part of this API (see the docs'
  dashboard guide); the MCP endpoints at `/mcp` speak MCP's streamable HTTP, not JSON request/answer pairs.
"""


class _Schemas:
    """The schemas of the routes' types, generated together so that shared models become one component."""

    def __init__(self, routes: Sequence[Route]) -> None:
        inputs: list[tuple[Any, JsonSchemaMode, TypeAdapter[Any]]] = [
            (ErrorBody, "serialization", TypeAdapter(ErrorBody))
        ]
        seen: set[tuple[int, str]] = {(id(ErrorBody), "serialization")}
        for route in routes:
            types = ((route.body, "validation"), (route.query, "validation"), (route.answer, "serialization"))
            for tp, mode in (*types, (route.streams, "serialization"), (route.error_body, "serialization")):
                if tp is not None and (id(tp), mode) not in seen:
                    seen.add((id(tp), mode))
                    inputs.append((tp, mode, TypeAdapter(tp)))  # type: ignore[arg-type]
        schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF)
        self._by_type = {(id(key), mode): schema for (key, mode), schema in schemas.items()}
        self.components: Json = definitions.get("$defs", {})

    def of(self, tp: Any, mode: JsonSchemaMode) -> Json:
        return dict(self._by_type[(id(tp), mode)])

    def properties(self, tp: Any) -> tuple[Json, list[str]]:
        """A query model's fields (as query parameters) and which are required."""
        schema = self.of(tp, "validation")
        if "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema.get("properties", {}), schema.get("required", [])


def _statuses(route: Route, *, project_path: bool) -> list[int]:
    statuses = {400, *route.errors}  # every route reads the tracing headers, which may be refused
    if project_path:  # a project id that is none (/v1/v1/models) leaves a path the gateway does not serve
        statuses.add(404)
    if route.access != "public":
        statuses |= {401, 403}
    if route.body is not None:
        statuses.add(413)
    if route.model_call:
        statuses |= {404, 429, 446, 500, 502, 503, 504}
    if route.v1_alias:  # the ledger's routes: off (404) or not started / failing (503)
        statuses |= {404, 503}
    return sorted(statuses)


def _operation(route: Route, schemas: _Schemas, *, project_path: bool) -> Json:
    operation: Json = {
        "operationId": route.operation_id + ("InProject" if project_path else ""),
        "tags": [route.tag],
        "summary": route.summary,
    }
    if route.description:
        operation["description"] = route.description
    parameters: list[Json] = []
    for name in (["project_id"] if project_path else []) + route.params:
        spec = (
            c.CONFIG_PROJECT
            if name == "project_id" and not project_path
            else c.PATH_PARAMETERS.get(name, c.ANY_PATH_PARAMETER)
        )
        parameters.append({"name": name, "in": "path", "required": True, **spec})
    if route.query is not None:
        properties, required = schemas.properties(route.query)
        for name, schema in properties.items():
            description = schema.pop("description", None)
            parameter: Json = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    headers = [c.PROJECT_PARAMETER] if route.access == "key" else []
    operation["parameters"] = [*parameters, *headers, *c.TRACE_PARAMETERS]
    if route.body is not None:
        # The management API reads a missing body as {}: every field has a default there.
        media: Json = {"schema": schemas.of(route.body, "validation")}
        if route.examples:
            media["examples"] = {name: {"value": value} for name, value in route.examples.items()}
        operation["requestBody"] = {
            "required": route.model_call or route.access == "admin",
            "content": {"application/json": media},
        }
    if route.access == "public":
        operation["security"] = []
    elif route.access == "admin":
        operation["security"] = [{"adminKey": []}]
    ok_headers = (*c.TRACE_HEADERS, *(c.MODEL_CALL_HEADERS if route.model_call else ()))
    answer = schemas.of(route.answer, "serialization") if route.answer is not None else {"type": "string"}
    content: Json = {route.media_type: {"schema": answer}}
    if route.streams is not None:
        content["text/event-stream"] = {"schema": _event_schema(schemas.of(route.streams, "serialization"))}
    responses: Json = {"200": {"description": "OK", "headers": c.headers_of(ok_headers), "content": content}}
    responses.update(route.responses)
    for status in _statuses(route, project_path=project_path):
        if route.error_body is None:
            responses[str(status)] = {"$ref": f"#/components/responses/{c.ERROR_NAMES[status]}"}
        else:  # the same answer in the route's own error shape
            known = c.ERROR_NAMES.get(status)
            shared: Json = c.ERROR_RESPONSES[known] if known is not None else c.OTHER_ERRORS.get(status, {})
            schema = schemas.of(route.error_body, "serialization")
            responses[str(status)] = {**shared, "content": {"application/json": {"schema": schema}}}
    operation["responses"] = responses
    return operation


def _event_schema(data: Json) -> Json:
    """One server-sent event of a stream (OpenAPI before 3.2 has a streamed media type's schema describe
    each event): JSON data, an error as the last event when the stream fails, and ``data: [DONE]``."""
    payload = {"anyOf": [data, {"$ref": c.ERROR_SCHEMA_REF}]}
    return {
        "type": "object",
        "description": "Server-sent events, `data: {json}` each: chunks, then `data: [DONE]`; an error after "
        'the answer has started is its last event, `data: {"error": {...}}`.',
        "required": ["data"],
        "properties": {
            "data": {
                "anyOf": [
                    {"const": "[DONE]"},
                    {"type": "string", "contentMediaType": "application/json", "contentSchema": payload},
                ]
            }
        },
    }


def build_document(routes: Iterable[Route], *, server_url: str = "/") -> Json:
    """The OpenAPI 3.1 document of ``routes``, served from ``server_url`` (the mount point or root path)."""
    from relaygate import __version__  # here: the package imports the gateway, which imports this module

    routes = list(routes)
    schemas = _Schemas(routes)
    paths: Json = {}
    forms = [(route.path, route, False) for route in routes]
    forms += [(route.project_path, route, True) for route in routes if route.scoped and route.project_path]
    for path, route, project_path in forms:
        assert path is not None
        item = paths.setdefault(path, {})
        item[route.method.lower()] = _operation(route, schemas, project_path=project_path)
    tags = list(dict.fromkeys(route.tag for route in routes))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "relaygate",
            "version": __version__,
            "summary": "An AI gateway: one OpenAI-compatible API in front of many model providers.",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": server_url or "/", "description": "This gateway."}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": tag, **({"description": c.TAGS[tag]} if tag in c.TAGS else {})} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "parameters": c.PARAMETERS,
            "headers": c.RESPONSE_HEADERS,
            "responses": c.ERROR_RESPONSES,
            "securitySchemes": c.SECURITY_SCHEMES,
        },
    }


class OpenApiDocument:
    """The document of a gateway's routes as JSON, made once per root path it is served under."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = tuple(routes)

    def document(self, root_path: str = "") -> Json:
        return build_document(self.routes, server_url=root_path.rstrip("/") or "/")

    @functools.lru_cache(maxsize=8)  # noqa: B019 (one document per mount point, for the gateway's lifetime)
    def json(self, root_path: str = "") -> bytes:
        return orjson.dumps(self.document(root_path))
