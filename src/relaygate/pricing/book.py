"""The price book: which price applies to a call, from four layers where the most specific wins.

1. the shipped catalogue (``prices.yaml``), by provider kind (or by a preset's name: ``together``);
2. prices from the config file (``prices:``);
3. the model registry (``POST /admin/models``), where a model registered for one project prices only that
   project's calls;
4. per-project custom prices (``POST /projects/{id}/custom_prices``), seen only by that project.

Layers 2-4 are keyed ``provider/model``, where ``provider`` is a provider's name in the config or a provider
kind (pricing the model on every provider of that kind). The book lives in memory and is shared by all
requests of an asyncio app: a change never edits a mapping that a lookup may be reading but builds a new one
and swaps the reference, so a lookup sees the old prices or the new ones, never half of each.
"""

from __future__ import annotations

from collections.abc import Mapping

from relaygate.pricing.catalogue import Catalogue, default_catalogue
from relaygate.pricing.models import ModelPrice, PriceEntry, PriceSource, parse_price_key
from relaygate.pricing.names import name_forms

__all__ = ["PriceBook"]

MEMO_SIZE = 4096

# (provider name or kind, lower-cased model name) -> price
_Index = dict[tuple[str, str], ModelPrice]


class PriceBook:
    """Finds the price of a call. See the module docstring for the layers."""

    def __init__(
        self, catalogue: Catalogue | None = None, *, overrides: Mapping[str, ModelPrice] | None = None
    ) -> None:
        """``catalogue`` defaults to the shipped one; ``overrides`` are the config's ``prices:``."""
        self._catalogue = catalogue if catalogue is not None else default_catalogue()
        self._config = _index(overrides or {})
        # Registered models' prices by project id; "" holds the models registered for every project.
        self._registered: dict[str, _Index] = {}
        self._projects: dict[str, _Index] = {}
        # Lookups already made (every call prices its model, often twice); emptied whenever a layer changes.
        self._memo: dict[tuple[str, str, str | None, str | None], PriceEntry | None] = {}
        # Output caps already worked out (the limits ask for one on every call), emptied with the lookups.
        self._caps: dict[tuple[str, str, str | None, str | None], int | None] = {}

    def _forget(self) -> None:
        """A layer changed: lookups and output caps are made again."""
        self._memo = {}
        self._caps = {}

    def set_registered(self, prices: Mapping[str, Mapping[str, ModelPrice]]) -> None:
        """Replace the whole registry layer: prices by project id ("" for every project), e.g. from the store."""
        self._forget()
        self._registered = {project: _index(book) for project, book in prices.items() if book}

    def register(self, key: str, price: ModelPrice, project_id: str | None = None) -> None:
        """Add or replace one registered model's price, for one project or (``None``) for every project."""
        self._forget()
        owner = project_id or ""
        self._registered = {**self._registered, owner: {**self._registered.get(owner, {}), **_index({key: price})}}

    def set_project_prices(self, project_id: str, prices: Mapping[str, ModelPrice]) -> list[str]:
        """Add or replace a project's custom prices for the given models and return their keys.

        Models not named keep their custom price, as LangDB's ``custom_prices`` updates the models it is given.
        """
        self._forget()
        updates = _index(prices)
        self._projects = {**self._projects, project_id: {**self._projects.get(project_id, {}), **updates}}
        return list(prices)

    def clear_project_prices(self, project_id: str) -> None:
        """Drop all of a project's custom prices."""
        self._forget()
        self._projects = {pid: index for pid, index in self._projects.items() if pid != project_id}

    def lookup(
        self, kind: str, model: str, provider_name: str | None = None, project_id: str | None = None
    ) -> PriceEntry | None:
        """The price entry for ``model`` on a provider of ``kind`` (named ``provider_name``), or ``None``.

        ``model`` is the provider's own model name (the part after ``provider/``). Snapshot and alias names
        find their model's price; an unknown model has no price, never a guessed one.
        """
        key = (kind, model, provider_name, project_id)
        if key in self._memo:
            return self._memo[key]
        entry = self._lookup(kind, model, provider_name, project_id)
        if len(self._memo) >= MEMO_SIZE:  # model names come from requests: keep what they can fill bounded
            self._memo = {}
        self._memo[key] = entry
        return entry

    def _lookup(self, kind: str, model: str, provider_name: str | None, project_id: str | None) -> PriceEntry | None:
        forms = name_forms(kind, model)
        providers = [p for p in (provider_name, kind) if p]
        layers: list[tuple[PriceSource, _Index | None]] = [
            ("project", self._projects.get(project_id) if project_id is not None else None),
            ("registry", self._registered.get(project_id) if project_id else None),
            ("registry", self._registered.get("")),
            ("config", self._config),
        ]
        for source, index in layers:
            if not index:
                continue
            # The provider's own name before its kind, then the model's most specific form first.
            for provider in providers:
                for form in forms:
                    price = index.get((provider, form))
                    if price is not None:
                        return PriceEntry(provider=provider, model=form, source=source, price=price)
        # A preset's own section of the catalogue (together) before its kind's.
        listed = provider_name if provider_name and provider_name != kind else None
        found = self._catalogue.find(listed, model) if listed is not None else None
        if found is None:
            listed, found = kind, self._catalogue.find(kind, model)
        if found is None:
            return None
        key, price = found
        return PriceEntry(provider=listed, model=key, source="catalogue", price=price)

    def price(
        self, kind: str, model: str, provider_name: str | None = None, project_id: str | None = None
    ) -> ModelPrice | None:
        """The price of ``model`` (see :meth:`lookup`), or ``None`` when it has none."""
        entry = self.lookup(kind, model, provider_name=provider_name, project_id=project_id)
        return entry.price if entry is not None else None

    def output_cap(
        self, kind: str, model: str, provider_name: str | None = None, project_id: str | None = None
    ) -> int | None:
        """The most ``model`` writes in one answer, or ``None`` when no price says.

        The price that applies (see :meth:`lookup`) may say; one from the config, the registry or a project
        that does not keeps the catalogue's figure for the model, since re-pricing a model leaves its output
        cap as it was.
        """
        key = (kind, model, provider_name, project_id)
        caps = self._caps
        if key in caps:
            return caps[key]
        cap = self._output_cap(kind, model, provider_name, project_id)
        if len(caps) >= MEMO_SIZE:  # model names come from requests, as for the lookups
            caps = self._caps = {}
        caps[key] = cap
        return cap

    def _output_cap(self, kind: str, model: str, provider_name: str | None, project_id: str | None) -> int | None:
        entry = self.lookup(kind, model, provider_name=provider_name, project_id=project_id)
        if entry is not None and entry.price.max_output_tokens is not None:
            return entry.price.max_output_tokens
        if entry is not None and entry.source == "catalogue":
            return None
        found = self._catalogue.find(kind, model)
        return found[1].max_output_tokens if found is not None else None

    def catalogue_entries(self, project_id: str | None = None) -> list[PriceEntry]:
        """Every listed price for ``GET /pricing``, sorted by provider and model.

        One entry per ``provider/model``: a config or registry price replaces the catalogue's for the same
        key, and with ``project_id`` the models registered for that project and its custom prices replace them.
        """
        merged: dict[tuple[str, str], PriceEntry] = {
            (kind, model): PriceEntry(provider=kind, model=model, source="catalogue", price=price)
            for kind, model, price in self._catalogue.entries()
        }
        layers: list[tuple[PriceSource, _Index]] = [
            ("config", self._config),
            ("registry", self._registered.get("", {})),
        ]
        if project_id is not None:
            layers.append(("registry", self._registered.get(project_id, {})))
            layers.append(("project", self._projects.get(project_id, {})))
        for source, index in layers:
            for (provider, model), price in index.items():
                merged[provider, model] = PriceEntry(provider=provider, model=model, source=source, price=price)
        return [merged[key] for key in sorted(merged)]


def _index(prices: Mapping[str, ModelPrice]) -> _Index:
    index: _Index = {}
    for key, price in prices.items():
        provider, model = parse_price_key(key)
        index[provider, model.strip().lower()] = price
    return index
