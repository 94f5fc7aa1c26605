"""The OpenAPI document as a Markdown reference page: the docs' ``reference/http-api.md`` is rendered from it
at build time (``docs/hooks/openapi.py``), so the reference cannot drift from what the gateway serves."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["render_markdown"]

Json = dict[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")


def render_markdown(document: Json) -> str:
    """The reference: authentication, headers, errors, each operation by tag, then the schemas."""
    out: list[str] = [document["info"]["description"].strip(), ""]
    components = document["components"]
    out += ["## Authentication", ""]
    for name, scheme in components["securitySchemes"].items():
        how = "`Authorization: Bearer <key>`" if scheme["type"] == "http" else f"`{scheme['name']}` header"
        out.append(f"- **{name}** ({how}): {scheme.get('description', '')}")
    out += ["", "## Request headers", "", "| header | description |", "| --- | --- |"]
    for parameter in components["parameters"].values():
        out.append(f"| `{parameter['name']}` | {_cell(parameter.get('description', ''))} |")
    out += ["", "## Response headers", "", "| header | description |", "| --- | --- |"]
    for name, header in components["headers"].items():
        out.append(f"| `{name}` | {_cell(header.get('description', ''))} |")
    out += ["", "## Errors", "", 'Every error is `{"error": {"message", "type", "param", "code"}}`.', ""]
    out += ["| status | when |", "| --- | --- |"]
    statuses = _error_statuses(document)
    for name, response in components["responses"].items():
        out.append(f"| {statuses.get(name, '')} | {_cell(response['description'])} |")
    out.append("")
    for tag in document.get("tags", []):
        out += [f"## {tag['name']}", ""]
        if tag.get("description"):
            out += [tag["description"], ""]
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if method in METHODS and tag["name"] in operation.get("tags", ()):
                    out += _operation(method, path, operation)
    out += ["## Schemas", ""]
    for name, schema in components["schemas"].items():
        out += _schema(name, schema)
    return "\n".join(out).rstrip() + "\n"


def _error_statuses(document: Json) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in document["paths"].values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                if "$ref" in response:
                    found[response["$ref"].rsplit("/", 1)[1]] = status
    found.setdefault("MethodNotAllowed", "405")
    return found


def _operation(method: str, path: str, operation: Json) -> list[str]:
    out = [f"### `{method.upper()} {path}` {{#{operation['operationId']}}}", "", f"**{operation['summary']}**", ""]
    if operation.get("description"):
        out += [operation["description"], ""]
    if operation.get("security") == []:
        out += ["No key needed.", ""]
    elif operation.get("security") == [{"adminKey": []}]:
        out += ["Needs `X-Admin-Key`.", ""]
    parameters = [p for p in operation.get("parameters", []) if "$ref" not in p]
    if parameters:
        out += ["| parameter | in | type | description |", "| --- | --- | --- | --- |"]
        for p in parameters:
            required = " (required)" if p.get("required") else ""
            description = _cell(p.get("description", ""))
            out.append(f"| `{p['name']}`{required} | {p['in']} | {_type(p.get('schema', {}))} | {description} |")
        out.append("")
    body = operation.get("requestBody")
    if body is not None:
        media = body["content"]["application/json"]
        optional = "" if body.get("required") else " (optional; a missing body reads as `{}`)"
        out += [f"Request body{optional}: {_type(media['schema'])}", ""]
        for name, example in media.get("examples", {}).items():
            out += [f"Example ({name}):", "", "```json", json.dumps(example["value"], indent=2), "```", ""]
    ok = operation["responses"]["200"]
    answers = ", ".join(f"{_type(m.get('schema', {}))} (`{media}`)" for media, m in ok.get("content", {}).items())
    errors = ", ".join(status for status in operation["responses"] if status != "200")
    out += [f"200: {answers}", "", f"Errors: {errors}", ""]
    return out


def _schema(name: str, schema: Json) -> list[str]:
    out = [f"### {name} {{#schema-{name}}}", ""]
    if schema.get("description"):
        out += [_cell(schema["description"]), ""]
    if "enum" in schema:
        return [*out, "One of " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".", ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*out, f"Type: {_type(schema)}", ""]
    required = set(schema.get("required", []))
    out += ["| field | type | description |", "| --- | --- | --- |"]
    for field, spec in properties.items():
        mark = f"`{field}`" + (" (required)" if field in required else "")
        out.append(f"| {mark} | {_type(spec)} | {_cell(spec.get('description', ''))} |")
    if schema.get("additionalProperties") is True:
        out += ["", "Other fields are accepted and passed on."]
    return [*out, ""]


def _type(schema: Json) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#schema-{name})"
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(option) for option in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    return str(kind) if kind else "any"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
