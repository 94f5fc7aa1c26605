"""Projects: their keys, guards, limits and what the ledger keeps of them."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from relaygate.keys import key_digest, key_id
from relaygate.limits.config import DEFAULT, ProjectLimits
from relaygate.settings.base import NAME_PATTERN, SettingsModel

__all__ = ["ProjectSettings"]


class ProjectSettings(SettingsModel):
    """A project and the API keys that may use it."""

    # The project's id: X-Project-Id, /{project_id}/v1/..., and its calls in the ledger.
    id: str = Field(pattern=NAME_PATTERN)
    # A display name.
    name: str | None = None
    # A key itself (usually "${ENV_VAR}") or "sha256:<hex>" of a key.
    keys: list[SecretStr] = Field(default_factory=list)
    # Whether the ledger stores the prompts and answers of this project's threads; calls are recorded either way.
    store_messages: bool = True
    # Ids of guards (top-level ``guards:``) applied to every call of the project.
    guards: list[str] = Field(default_factory=list)
    # Whether callers may bring their own provider key for a call (LB-LLM-Key or X-Provider-Key); refused
    # with a 403 otherwise. See relaygate.middleware.byok.
    byok: bool = False
    # Whether a request may carry its own script router ({"router": {"type": "script", "script": "..."}});
    # refused with a 400 router_script_not_allowed otherwise. Named routers (routers:) work either way.
    request_scripts: bool = False

    # Rate limits and budgets of the project, its keys, users and models (relaygate.limits.config).
    limits: ProjectLimits | None = None

    @model_validator(mode="after")
    def _limited_keys_are_the_projects(self) -> ProjectSettings:
        if self.limits is not None:
            ids = {key_id(key_digest(key.get_secret_value())) for key in self.keys}
            for name in self.limits.keys:
                if name != DEFAULT and name not in ids:
                    raise ValueError(f"limits.keys: {name} is not one of the keys of project {self.id!r}")
        return self
