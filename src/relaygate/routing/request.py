"""The request's own router: ``model: "router/dynamic"`` with a ``router`` object, as LangDB's API has it.

```json
{"model": "router/dynamic",
 "router": {"name": "cheap-first", "type": "fallback", "targets": ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4"]}}
```

``type`` is a strategy (``fallback``, ``percentage``, ``random``, ``optimized``, ``conditional``) and
the other fields are those of a virtual model in the config (``targets``, ``weights``, ``metric``,
``explore``, ``routes``, ``retry``); LangDB's ``targets_percentages`` is accepted for ``weights``, and
its ``a_b_testing`` for ``percentage``. ``name`` is the router's name in the record: the request is
routed as ``router/<name>`` (see :meth:`relaygate.routing.ModelRouter.plan`). A router object that
cannot be used is a 400 whose ``param`` names the field (``router.targets[1]``). LangDB's ``script``
routers (JavaScript) are refused by name: relaygate runs no code from requests.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError

from relaygate.errors import InvalidRequestError
from relaygate.settings import Strategy, VirtualModelSettings

__all__ = ["parse_router"]

STRATEGIES = get_args(Strategy)
# LangDB's other names for strategies (its core/src/routing/mod.rs).
ALIASES = {"a_b_testing": "percentage"}
# The name goes into the ledger and the traces as part of a model name: kept short and printable.
MAX_NAME_LENGTH = 128


def parse_router(value: Any) -> tuple[VirtualModelSettings, str | None]:
    """The router object as a virtual model's settings, and its ``name`` (``None`` when it has none)."""
    if value is None:
        raise InvalidRequestError(
            "Missing required parameter: 'router'. The model 'router/dynamic' routes by the request's router "
            'object: {"type": "fallback", "targets": ["provider/model", ...]}.',
            param="router",
            code="missing_required_parameter",
        )
    if not isinstance(value, dict):
        raise _invalid("router", "an object with type and targets")
    data = dict(value)
    name = data.pop("name", None)
    if name is not None and not (isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and name.isprintable()):
        raise _invalid("router.name", f"a string of at most {MAX_NAME_LENGTH} printable characters")
    kind = data.pop("type", None)
    if kind is None:
        raise InvalidRequestError(
            "Missing required parameter: 'router.type'.", param="router.type", code="missing_required_parameter"
        )
    if isinstance(kind, str):
        kind = ALIASES.get(kind, kind)
    if kind not in STRATEGIES:
        raise _invalid("router.type", f"one of {', '.join(STRATEGIES)} (script routers are not supported)")
    if "strategy" in data:
        raise _invalid("router.strategy", "absent: the strategy is router.type")
    renamed = {}
    if "targets_percentages" in data:
        if "weights" in data:
            raise _invalid("router.targets_percentages", "absent when router.weights is given")
        data["weights"] = data.pop("targets_percentages")
        renamed["weights"] = "targets_percentages"
    data["strategy"] = kind
    try:
        return VirtualModelSettings.model_validate(data), name or None
    except ValidationError as exc:
        error = exc.errors()[0]
        param = _param(error["loc"], renamed)
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            # A check across fields ("weights: ...") names its field first.
            field, sep, rest = message.partition(": ")
            if sep and field in VirtualModelSettings.model_fields:
                param, message = _param((field,), renamed), rest
        if error["type"] == "missing":
            raise InvalidRequestError(
                f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
            ) from None
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "model_type" and error.get("ctx", {}).get("class_name") == "TargetSettings":
            message = "expected 'provider/model' or an object with model and request parameters"
        elif error["type"] == "model_type":
            message = "expected an object"
        raise InvalidRequestError(
            f"Invalid value for '{param}': {message}.", param=param, code="invalid_value"
        ) from None


def _invalid(param: str, wanted: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{param}': expected {wanted}.", param=param, code="invalid_value")


def _param(loc: tuple[int | str, ...], renamed: dict[str, str]) -> str:
    out = "router"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "strategy":
            out += ".type"
        elif part != "function-before[_target_object(), TargetSettings]" and not part[:1].isupper():
            out += "." + renamed.get(part, part)
    return out
