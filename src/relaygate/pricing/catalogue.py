"""The shipped price catalogue: ``prices.yaml`` loaded, validated and searchable by provider kind and model.

Every entry goes through :class:`~relaygate.pricing.models.ModelPrice` when the file is loaded, so a broken
entry stops start-up with its kind and model name in the message instead of pricing calls wrongly later.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Hashable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import StringConstraints, TypeAdapter, ValidationError

from relaygate.pricing.models import ModelPrice
from relaygate.pricing.names import name_forms, prefix_match

__all__ = ["Catalogue", "CatalogueError", "CatalogueKind", "default_catalogue", "load_catalogue"]

# Provider kinds, and presets whose models are priced under the preset's name (together: Together's own models,
# served by a provider of kind openai named "together").
CatalogueKind = Literal["openai", "anthropic", "gemini", "together"]
# Lookups lower-case the requested name, so a key with capitals could never be found.
_ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._:@\-/]*$")]
_CATALOGUE: TypeAdapter[dict[CatalogueKind, dict[_ModelName, ModelPrice]]] = TypeAdapter(
    dict[CatalogueKind, dict[_ModelName, ModelPrice]]
)
_SHIPPED = "prices.yaml"


class CatalogueError(ValueError):
    """The price catalogue cannot be used; the message names the entry and the problem."""


class Catalogue:
    """Validated prices by provider kind and model name; read-only once built."""

    def __init__(self, prices: Mapping[CatalogueKind, Mapping[str, ModelPrice]]) -> None:
        self._prices: dict[str, dict[str, ModelPrice]] = {kind: dict(models) for kind, models in prices.items()}

    @classmethod
    def from_data(cls, data: Any, *, source: str = "catalogue") -> Catalogue:
        """Validate a ``{kind: {model: price}}`` mapping (as read from YAML); errors name ``source``."""
        try:
            return cls(_CATALOGUE.validate_python(data))
        except ValidationError as exc:
            lines = (f"{source}: {_dotted(error['loc'])}: {_message(error)}" for error in exc.errors())
            raise CatalogueError("\n".join(lines)) from None

    def entries(self) -> Iterator[tuple[str, str, ModelPrice]]:
        """Every ``(kind, model, price)``."""
        for kind, models in self._prices.items():
            for model, price in models.items():
                yield kind, model, price

    def find(self, kind: str, model: str) -> tuple[str, ModelPrice] | None:
        """The listed name and price for a model the provider calls ``model``, or ``None``."""
        models = self._prices.get(kind)
        if not models:
            return None
        forms = name_forms(kind, model)
        for form in forms:
            if form in models:
                return form, models[form]
        key = prefix_match(forms[-1], models)
        return (key, models[key]) if key is not None else None

    def __len__(self) -> int:
        return sum(len(models) for models in self._prices.values())


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """Load and validate a catalogue file; without ``path``, the ``prices.yaml`` shipped in this package."""
    if path is None:
        name = _SHIPPED
        text = resources.files("relaygate.pricing").joinpath(_SHIPPED).read_text(encoding="utf-8")
    else:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogueError(f"{name}: cannot read the price catalogue: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{name}: not valid YAML: {exc}") from exc
    return Catalogue.from_data(data if data is not None else {}, source=name)


@functools.cache
def default_catalogue() -> Catalogue:
    """The shipped catalogue, loaded once per process."""
    return load_catalogue()


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys: PyYAML would keep the last one without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return str(error["msg"]).removeprefix("Value error, ")


def _dotted(loc: tuple[str | int, ...]) -> str:
    # pydantic reports a bad mapping key as (..., key, "[key]"); the key itself is what a reader looks for.
    return ".".join(str(part) for part in loc if part != "[key]")
