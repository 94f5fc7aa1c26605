"""Upstream providers: where each is, its key and its timeouts."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from relaygate.settings.base import DEFAULT_BASE_URLS, ProviderKind, SettingsModel
from relaygate.settings.presets import ImagesApi

__all__ = ["ProviderSettings", "Timeouts"]


class Timeouts(SettingsModel):
    """Upstream timeouts, in seconds."""

    # Opening a connection to the provider.
    connect: float = Field(10.0, gt=0)
    # Longest silence while reading a response; a non-streamed completion says nothing until it is done.
    read: float = Field(600.0, gt=0)
    # From sending a streamed request to its first chunk: a stuck stream fails fast and can be retried.
    first_chunk: float = Field(120.0, gt=0)


class ProviderSettings(SettingsModel):
    """One upstream provider. Its name in ``providers:`` is the model prefix (``name/model``)."""

    # The API it speaks: openai (any OpenAI-compatible server), anthropic (Messages API), gemini (generateContent)
    # or mock (the built-in deterministic model).
    kind: ProviderKind
    # Where its API is (with /v1 for OpenAI-compatible servers); required for openai, defaulted for anthropic and
    # gemini.
    base_url: str | None = None
    # The provider's key, usually "${ENV_VAR}"; sent upstream, never logged.
    api_key: SecretStr | None = None
    # When given, only these models are routed and listed; when absent, any model name is passed on
    # and GET /v1/models asks the upstream.
    models: list[str] | None = None
    # Extra headers sent with every upstream request (OpenAI-Organization, anthropic-beta, ...).
    headers: dict[str, str] = Field(default_factory=dict)
    # Upstream timeouts, in seconds.
    timeouts: Timeouts = Field(default_factory=Timeouts)
    # Pooled connections to this provider.
    max_connections: int = Field(1000, ge=1)
    # Ask the upstream for stream_options.include_usage so that usage of streams is always known.
    stream_usage: bool = True
    # mock only: seconds the mock waits before each streamed piece (a word, or a piece of a tool call's arguments);
    # 0 streams the whole answer at once.
    chunk_delay: float = Field(0.0, ge=0)
    # openai only: POST /v1/responses calls go to the upstream's own /responses endpoint as they came (model
    # name aside), so that built-in tools and reasoning items pass through; off: they are translated to chat.
    native_responses: bool = False
    # anthropic only: max_tokens when the request sets none (Anthropic requires it).
    default_max_tokens: int = Field(4096, ge=1)
    # openai only: how the server makes images (see relaygate.settings.presets.ImagesApi); absent: OpenAI's
    # Images API, or the preset's way for a provider named after one (together, openrouter).
    images_api: ImagesApi | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return url.rstrip("/") if url else url

    @model_validator(mode="after")
    def _base_url_known(self) -> ProviderSettings:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("base_url is required for kind openai")
        if self.base_url is None and self.kind in DEFAULT_BASE_URLS:
            object.__setattr__(self, "base_url", DEFAULT_BASE_URLS[self.kind])
        return self
