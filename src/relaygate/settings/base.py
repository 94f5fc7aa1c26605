"""What every settings module shares: the config error, the frozen model base and the names of kinds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["DEFAULT_BASE_URLS", "NAME_PATTERN", "ConfigError", "ProviderKind", "SettingsModel"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"

ProviderKind = Literal["openai", "anthropic", "gemini", "mock"]
# Where a native adapter goes when the config gives no base_url.
DEFAULT_BASE_URLS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class SettingsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
