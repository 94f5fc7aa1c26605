"""``json_schema``: the answer is JSON and validates against ``schema`` (any JSON Schema draft it declares).

``jsonschema`` is imported when a guard of this type is configured, not with the guards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import Field, field_validator

from relaygate.context import RequestContext
from relaygate.guards.base import Guard, GuardEnv, GuardSpec, Parameters, parse_parameters
from relaygate.guards.results import Verdict

__all__ = ["JsonSchemaGuard"]

MAX_ERRORS = 3


class JsonSchemaParameters(Parameters):
    # "schema" would shadow a BaseModel method.
    schema_: dict[str, Any] = Field(alias="schema")

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        import jsonschema
        from jsonschema.exceptions import SchemaError

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema


class JsonSchemaGuard(Guard):
    type = "json_schema"

    def __init__(self, spec: GuardSpec, env: GuardEnv) -> None:
        import jsonschema

        super().__init__(spec, env)
        self.parameters = parse_parameters(JsonSchemaParameters, spec.parameters)
        schema = self.parameters.schema_
        self.validator = jsonschema.validators.validator_for(schema)(schema)

    async def judge(self, texts: Sequence[str], ctx: RequestContext) -> Verdict:
        for text in texts:
            try:
                document = orjson.loads(_unfenced(text))
            except orjson.JSONDecodeError:
                return Verdict(False, "the answer is not JSON")
            errors = sorted(self.validator.iter_errors(document), key=lambda error: list(error.path))
            if errors:
                # The schema's words and the JSON paths only: values from the answer are not echoed.
                described = "; ".join(
                    f"{_path(error.absolute_path)}: fails '{error.validator}'" for error in errors[:MAX_ERRORS]
                )
                return Verdict(False, f"the answer does not match the schema ({described})")
        return Verdict(True)


def _path(path: Sequence[Any]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _unfenced(text: str) -> str:
    """Models often wrap JSON in a Markdown code fence; the fence is not part of the answer's JSON."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped[3:-3]
        first_line, _, rest = stripped.partition("\n")
        return rest if first_line.strip().isalpha() or not first_line.strip() else stripped
    return stripped
