"""The ``limits:`` of a project in the config file: the same five limits for the project, its keys, users and models.

```yaml
projects:
  - id: proj-a
    keys: ["${PROJ_A_KEY}"]
    limits:
      requests_per_minute: 600        # the whole project
      tokens_per_minute: 200000
      usd_per_day: 5
      usd_per_month: 100
      usd_total: 1000
      tool_calls_per_minute: 120      # MCP tool calls through /mcp (the project and its keys only)
      keys:                           # by key id (key_ and 12 hex digits) or the key's sha256: line
        default: {requests_per_minute: 100}        # each key without an entry of its own
      users:                          # by extra.user.id
        default: {usd_per_day: 0.50}
        u-vip: {usd_per_day: 5}
      models:                         # by provider/model, as routed
        upstream/gpt-4o: {tokens_per_minute: 50000, usd_per_day: 2, max_output_tokens: 16384}
      unsized_attachment_tokens: 100000   # reserved for each file the gateway cannot size (below)
      byok_calls: ignore              # calls paid with the caller's own provider key: count | ignore (below)
```

Every limit that applies to a call must hold: the project's, its key's, its user's and its model's. A
``default`` entry applies to each key, user or model that has no entry of its own, each counted on its own.

A request may attach what the gateway cannot size: a file by its id, a remote document, audio or video, inline
video (:mod:`relaygate.limits.attachments`). Under a USD budget such a request is refused (403
``unsized_attachment``, naming the part), unless ``unsized_attachment_tokens`` says how many prompt tokens to
reserve for each such attachment; rate limits alone count it at that figure, or at nothing.

A call may be paid with the caller's own provider key (``LB-LLM-Key``, for a project with ``byok: true``).
``byok_calls: count`` (the default) holds such calls against the USD budgets like any other; ``ignore`` leaves
them out of the budgets (the provider bills the caller, not the gateway), both when they are reserved and when
a budget's spend is loaded from the ledger. Rate limits (requests and tokens per minute) count them either way.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from relaygate.keys import key_digest, key_id
from relaygate.pricing.models import parse_price_key

__all__ = ["DEFAULT", "LIMIT_NAMES", "TOOL_LIMIT", "USD_LIMITS", "LimitSet", "ModelLimits", "ProjectLimits"]

DEFAULT = "default"
USD_LIMITS = ("usd_per_day", "usd_per_month", "usd_total")
# The limits of model calls; tool calls (TOOL_LIMIT) are counted apart, by the MCP tool calls they limit.
LIMIT_NAMES = ("requests_per_minute", "tokens_per_minute", *USD_LIMITS)
TOOL_LIMIT = "tool_calls_per_minute"

_KEY_ID = re.compile(r"^key_[0-9a-f]{12}$")
_KEY_LINE = re.compile(r"^sha256:[0-9a-fA-F]{64}$")
Usd = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, decimal_places=9)]


class LimitSet(BaseModel):
    """Limits of one scope; a limit left out does not apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Model calls per minute, as a bucket that refills continuously (no burst at the turn of a minute).
    requests_per_minute: int | None = Field(None, ge=1)
    # Prompt and answer tokens per minute, reserved at their worst case before the call and settled after.
    tokens_per_minute: int | None = Field(None, ge=1)
    # USD per UTC day.
    usd_per_day: Usd | None = None
    # USD per UTC calendar month.
    usd_per_month: Usd | None = None
    # USD in all.
    usd_total: Usd | None = None
    # MCP tool calls per minute through /mcp, as a bucket like requests_per_minute (a project's and its keys' only).
    tool_calls_per_minute: int | None = Field(None, ge=1)

    @property
    def has_usd(self) -> bool:
        return any(getattr(self, name) is not None for name in USD_LIMITS)

    @property
    def empty(self) -> bool:
        """No limit of model calls (``tool_calls_per_minute`` limits tool calls only)."""
        return all(getattr(self, name) is None for name in LIMIT_NAMES)


class ModelLimits(LimitSet):
    """Limits of a model, and the output cap its reservations assume when a request sets no max_tokens."""

    # The answer size reserved for a request that sets no max_tokens, for models whose price gives no output cap.
    max_output_tokens: int | None = Field(None, ge=1)


class ProjectLimits(ModelLimits):
    """The limits of a project: its own (the fields it shares with a model's), and per key, user and model."""

    # Limits per API key, by key id (key_ and 12 hex digits), its sha256: line, or `default` for each key without an
    # entry.
    keys: dict[str, LimitSet] = Field(default_factory=dict)
    # Limits per extra.user.id of the requests, or `default` for each user without an entry.
    users: dict[str, LimitSet] = Field(default_factory=dict)
    # Limits per provider/model as routed, or `default` for each model without an entry.
    models: dict[str, ModelLimits] = Field(default_factory=dict)
    # Prompt tokens reserved for each attachment the gateway cannot size (a file id, a remote PDF, audio or video);
    # without it such requests are refused under a USD budget.
    unsized_attachment_tokens: int | None = Field(None, ge=1)
    # Calls paid with the caller's own provider key (LB-LLM-Key, for a project with byok: true): count holds them
    # against the USD budgets like any other; ignore leaves them out of the budgets (rate limits count them).
    byok_calls: Literal["count", "ignore"] = "count"

    @field_validator("keys")
    @classmethod
    def _key_ids(cls, keys: dict[str, LimitSet]) -> dict[str, LimitSet]:
        out = {}
        for name, limits in keys.items():
            if name == DEFAULT or _KEY_ID.match(name):
                out[name] = limits
            elif _KEY_LINE.match(name):
                out[key_id(key_digest(name))] = limits
            else:
                raise ValueError(
                    f"{name!r}: name a key by its id (key_ and 12 hex digits), its sha256: line or 'default'"
                )
        return out

    @field_validator("users")
    @classmethod
    def _user_limits(cls, users: dict[str, LimitSet]) -> dict[str, LimitSet]:
        _no_tool_limit(users, "users")
        return users

    @field_validator("models")
    @classmethod
    def _model_names(cls, models: dict[str, ModelLimits]) -> dict[str, ModelLimits]:
        _no_tool_limit(models, "models")
        for name in models:
            if name != DEFAULT:
                try:
                    parse_price_key(name)
                except ValueError:
                    raise ValueError(f"{name!r}: name a model as provider/model, or 'default'") from None
        return models

    @property
    def has_usd(self) -> bool:
        groups: list[dict[str, LimitSet]] = [self.keys, self.users, dict(self.models)]
        return super().has_usd or any(limits.has_usd for group in groups for limits in group.values())


def _no_tool_limit(entries: dict[str, ModelLimits] | dict[str, LimitSet], group: str) -> None:
    for name, limits in entries.items():
        if limits.tool_calls_per_minute is not None:
            raise ValueError(
                f"{name!r}: tool_calls_per_minute limits MCP tool calls, which have no {group[:-1]}: set it on "
                "the project or its keys"
            )
