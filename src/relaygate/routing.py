"""Model names to providers: ``provider/model``, or a bare name sent to the default provider."""

from __future__ import annotations

from collections.abc import Mapping

from relaygate.context import Route
from relaygate.errors import ModelNotFoundError
from relaygate.providers.base import Provider

__all__ = ["ModelRouter"]


class ModelRouter:
    def __init__(self, providers: Mapping[str, Provider], *, default_provider: str | None = None) -> None:
        self.providers = dict(providers)
        self.default_provider = default_provider

    def resolve(self, requested: str, *, param: str = "model") -> Route:
        if not requested.isprintable():
            raise ModelNotFoundError("Model names may not hold control characters.", param=param)
        prefix, slash, model = requested.partition("/")
        provider = self.providers.get(prefix) if slash else None
        if provider is None and self.default_provider is not None:
            provider, model = self.providers[self.default_provider], requested
        if provider is None:
            raise ModelNotFoundError(
                f"The model '{requested}' does not exist. Name models as provider/model; "
                f"the providers are: {', '.join(sorted(self.providers))}.",
                param=param,
            )
        if not model or not provider.accepts(model):
            raise ModelNotFoundError(
                f"The model '{requested}' does not exist: provider '{provider.name}' does not serve '{model}'.",
                param=param,
            )
        return Route(provider=provider, model=model, requested=requested)
