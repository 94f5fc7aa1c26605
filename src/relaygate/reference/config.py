"""The configuration reference: every key of the config file, rendered from the settings models.

Each model of :mod:`relaygate.settings` becomes one section, named by where it sits in the file
(``providers.<name>.timeouts``), with one row per field: its type and constraints, its default and
what it does. What it does is the field's ``description`` when it has one, else its comments in the
source (:mod:`relaygate.reference.comments`). A model used in several places (``retry`` and
``models.<name>.retry``) is described once, where it first appears, and linked from the others.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from relaygate.reference.comments import field_comments
from relaygate.settings import ALIASES, CONFIG_ENV_VAR, FIXED_FIELDS, PRESETS, Settings, TargetSettings
from relaygate.settings.loading import OTEL_VARIABLES

__all__ = ["Section", "configuration_reference", "environment_reference", "field_description", "settings_sections"]

# How a map's keys are written in a section's path, by the model and field that hold the map.
PLACEHOLDERS = {
    ("Settings", "providers"): "<name>",
    ("Settings", "guards"): "<id>",
    ("Settings", "models"): "<name>",
    ("Settings", "prices"): "<provider/model>",
    ("Settings", "mcp_servers"): "<name>",
    ("ProjectLimits", "keys"): "<key>",
    ("ProjectLimits", "users"): "<user id>",
    ("ProjectLimits", "models"): "<provider/model>",
    ("ImagePrices", "prices"): "<quality>",
}
SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    Decimal: "number",
    bool: "boolean",
    SecretStr: "string (secret: never logged)",
    Any: "any",
    type(None): "null",
}


@dataclass
class Section:
    """One model of the settings, at the first path where the config file holds it."""

    path: str
    model: type[BaseModel]
    also: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.path.lower()).strip("-") or "top-level"

    @property
    def title(self) -> str:
        return f"`{self.path}`" if self.path else "Top level"


def settings_sections(root: type[BaseModel] = Settings) -> list[Section]:
    """Every model reachable from ``root``, each once: at its shallowest path, in the order a reader meets them."""
    shallowest: dict[type[BaseModel], str] = {}
    level = [("", root)]
    while level:  # breadth first: the first path found for a model is its shallowest
        below = []
        for path, model in level:
            if model in shallowest:
                continue
            shallowest[model] = path
            below += list(_fields_models(path, model))
        level = below
    sections: dict[type[BaseModel], Section] = {}

    def visit(path: str, model: type[BaseModel]) -> None:  # depth first: a part's parts follow it
        if path != shallowest[model] or model in sections:
            return
        sections[model] = Section(path, model)
        for child_path, child in _fields_models(path, model):
            visit(child_path, child)

    visit("", root)
    for model, section in sections.items():
        section.also = _other_paths(root, model, section.path)
    return list(sections.values())


def _fields_models(path: str, model: type[BaseModel]) -> Iterator[tuple[str, type[BaseModel]]]:
    for name, info in model.model_fields.items():
        child = f"{path}.{name}" if path else name
        placeholder = PLACEHOLDERS.get((model.__name__, name), "<name>")
        yield from _models_in(info.annotation, child, placeholder)


def _other_paths(root: type[BaseModel], target: type[BaseModel], canonical: str) -> list[str]:
    out: list[str] = []

    def walk(path: str, model: type[BaseModel], seen: frozenset[type[BaseModel]]) -> None:
        if model is target and path != canonical:
            out.append(path)
        for child_path, child in _fields_models(path, model):
            if child not in seen:
                walk(child_path, child, seen | {child})

    walk("", root, frozenset({root}))
    return out


def configuration_reference(root: type[BaseModel] = Settings) -> str:
    """The Markdown of every section: a heading, the model's docstring and a table of its keys."""
    sections = settings_sections(root)
    anchors = {section.model: section for section in sections}
    out: list[str] = []
    for section in sections:
        out += [f"## {section.title} {{ #{section.anchor} }}", ""]
        own = section.model.__dict__.get("__doc__")  # not a base class's
        doc = _markdown(inspect.cleandoc(own)) if own else ""
        if doc and section.model is not root:
            out += [doc, ""]
        if section.also:
            out += ["Also at: " + ", ".join(f"`{path}`" for path in section.also) + ".", ""]
        out += ["| key | type | default | what it does |", "| --- | --- | --- | --- |"]
        for name, info in section.model.model_fields.items():
            cells = [
                f"`{name}`",
                _type(info.annotation, info.metadata, anchors),
                _default(info, anchors),
                field_description(section.model, name),
            ]
            out.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        if section.model.model_config.get("extra") == "allow" and issubclass(section.model, TargetSettings):
            fixed = ", ".join(f"`{name}`" for name in sorted(FIXED_FIELDS))
            out.append(
                f"| *any other key* | any | | a request parameter this target sets (`null` removes it); not {fixed} |"
            )
        out.append("")
    return "\n".join(out)


def environment_reference() -> str:
    """The environment variables the config loader reads, and the settings they fill or override."""
    rows = [
        f"| `{CONFIG_ENV_VAR}` | the config file, when `--config` is not given (then `./relaygate.yaml` if present) |"
    ]
    for name, preset in PRESETS.items():
        variables = " or ".join(f"`{variable}`" for variable in preset.key_variables)
        aliases = "".join(f", also `{alias}/...`" for alias, target in ALIASES.items() if target == name)
        rows.append(
            f"| {variables} | adds the preset provider `{name}` (kind `{preset.kind}`, `{preset.base_url}`): "
            f"models `{name}/...`{aliases}; a config entry `{name}` without `api_key` takes its key from it |"
        )
    for variable, key in OTEL_VARIABLES.items():
        rows.append(f"| `{variable}` | overrides [`telemetry.{key}`](#telemetry) |")
    return "\n".join(["| variable | what it does |", "| --- | --- |", *rows, ""])


def field_description(model: type[BaseModel], name: str) -> str:
    """A field's description, or the comments beside it in the class that declares it."""
    info = model.model_fields[name]
    text = info.description or ""
    if not text:
        for cls in model.__mro__:
            if name in cls.__dict__.get("__annotations__", {}):
                text = field_comments(cls).get(name, "")
                break
    text = _markdown(text)
    return text[:1].upper() + text[1:]


def _models_in(annotation: Any, path: str, placeholder: str) -> Iterator[tuple[str, type[BaseModel]]]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        yield from _models_in(args[0], path, placeholder)
    elif origin in (Union, types.UnionType):
        for arg in args:
            yield from _models_in(arg, path, placeholder)
    elif origin is list:
        yield from _models_in(args[0], f"{path}[]", placeholder)
    elif origin is dict:
        yield from _models_in(args[1], f"{path}.{placeholder}", "<name>")
    elif inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        yield path, annotation


def _type(annotation: Any, metadata: list[Any], anchors: dict[type[BaseModel], Section]) -> str:
    constraints = _constraints(metadata)
    if not constraints:
        return _describe(annotation, anchors)
    args = get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType) and type(None) in args:
        # A field's constraints bound its value, not its null: "integer (≥ 1) or null".
        rest = [arg for arg in args if arg is not type(None)]
        inner = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        return f"{_describe(inner, anchors)} ({constraints}) or null"
    return f"{_describe(annotation, anchors)} ({constraints})"


def _describe(annotation: Any, anchors: dict[type[BaseModel], Section]) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0], list(args[1:]), anchors)
    if origin in (Union, types.UnionType):
        parts = [_describe(arg, anchors) for arg in args if arg is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin is list:
        return f"list of {_describe(args[0], anchors)}"
    if origin is dict:
        return f"map of {_describe(args[1], anchors)}"
    if annotation in SCALARS:
        return SCALARS[annotation]
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        section = anchors.get(annotation)
        return f"[{annotation.__name__}](#{section.anchor})" if section else annotation.__name__
    return getattr(annotation, "__name__", str(annotation))


def _constraints(metadata: list[Any]) -> str:
    out = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            out.append(_constraints(item.metadata))
        elif isinstance(item, annotated_types.Ge):
            out.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            out.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            out.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            out.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.MinLen):
            out.append(f"at least {item.min_length}")
        elif isinstance(item, annotated_types.MaxLen):
            out.append(f"at most {item.max_length}")
        elif getattr(item, "pattern", None):
            out.append(f"matching `{item.pattern}`")
    return ", ".join(part for part in out if part)


def _default(info: FieldInfo, anchors: dict[type[BaseModel], Section]) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        section = anchors.get(type(value))
        return f"[its defaults](#{section.anchor})" if section else "its defaults"
    return f"`{_yaml(value)}`"


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if value == "" or ":" in value else value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    return str(value)


def _markdown(docstring: str) -> str:
    """A docstring's reStructuredText roles and literals in Markdown."""
    text = re.sub(r":[a-z]+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", docstring)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
