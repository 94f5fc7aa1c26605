"""The request's own router: a ``router`` object beside the model, as LangDB's API has it.

```json
{"model": "router/dynamic",
 "router": {"name": "cheap-first", "type": "fallback", "targets": ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4"]}}
```

``type`` is a strategy (``fallback``, ``percentage``, ``random``, ``optimized``, ``conditional``) and
the other fields are those of a virtual model in the config (``targets``, ``weights``, ``metric``,
``explore``, ``routes``, ``retry``); LangDB's ``targets_percentages`` is accepted for ``weights``, and
its ``a_b_testing`` for ``percentage``. ``name`` is the router's name in the record: with
``router/dynamic`` the request is routed as ``router/<name>`` (see :meth:`relaygate.routing.ModelRouter.plan`).

Beside any other model (``{"model": "gpt-4o", "router": {...}}``) the model is the router's default
target: the targets of a strategy router when it lists none, else its last fallback (with weight 0 for
``percentage``); what a script router picks when its script names no model.

``type: "script"`` is a script router (:class:`ScriptSpec`): its ``script`` (JavaScript), or, without a
script, the router of that ``name`` in the config's ``routers:``. A router object that cannot be used is
a 400 whose ``param`` names the field (``router.targets[1]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from pydantic import ValidationError

from relaygate.errors import InvalidRequestError
from relaygate.settings import MAX_SCRIPT_CHARS, Strategy, VirtualModelSettings

__all__ = ["ScriptSpec", "parse_router"]

STRATEGIES = get_args(Strategy)
# LangDB's other names for strategies (its core/src/routing/mod.rs).
ALIASES = {"a_b_testing": "percentage"}
# The name goes into the ledger and the traces as part of a model name: kept short and printable.
MAX_NAME_LENGTH = 128


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """A script router as a request gives it: its own ``script``, or ``None`` for the configured router ``name``."""

    name: str | None
    script: str | None


def parse_router(value: Any, *, default: str | None = None) -> tuple[VirtualModelSettings | ScriptSpec, str | None]:
    """The router object as a virtual model's settings (or a script router), and its ``name`` (``None``
    when it has none). ``default``: the request's model, when it is not ``router/dynamic``."""
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
    if kind == "script" or (kind is None and ("script" in data or (name and not data))):
        return _script(data, name or None), name or None
    if kind is None:
        raise InvalidRequestError(
            "Missing required parameter: 'router.type'.", param="router.type", code="missing_required_parameter"
        )
    if isinstance(kind, str):
        kind = ALIASES.get(kind, kind)
    if kind not in STRATEGIES:
        raise _invalid("router.type", f"one of script, {', '.join(STRATEGIES)}")
    if "strategy" in data:
        raise _invalid("router.strategy", "absent: the strategy is router.type")
    renamed = {}
    if "targets_percentages" in data:
        if "weights" in data:
            raise _invalid("router.targets_percentages", "absent when router.weights is given")
        data["weights"] = data.pop("targets_percentages")
        renamed["weights"] = "targets_percentages"
    data["strategy"] = kind
    if default is not None:
        _with_default(data, default)
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


def _script(data: dict[str, Any], name: str | None) -> ScriptSpec:
    script = data.pop("script", None)
    if data:
        field = sorted(data)[0]
        raise _invalid(f"router.{field}", "absent: a script router has a name and a script")
    if script is None:
        if name is None:
            raise InvalidRequestError(
                "Missing required parameter: 'router.script'. A script router carries its script, or names a router "
                "of the gateway's config in router.name.",
                param="router.script",
                code="missing_required_parameter",
            )
        return ScriptSpec(name, None)
    if not isinstance(script, str) or not script.strip() or len(script) > MAX_SCRIPT_CHARS:
        raise _invalid("router.script", f"JavaScript defining route(), at most {MAX_SCRIPT_CHARS} characters")
    return ScriptSpec(name, script)


def _with_default(data: dict[str, Any], default: str) -> None:
    """The request's model as the router's default target: its only target, or its last fallback."""
    targets = data.get("targets")
    if targets is None:
        data["targets"] = [default]
        if data["strategy"] == "percentage" and "weights" not in data:
            data["weights"] = [1]
        return
    if not isinstance(targets, list):
        return  # the validation below names the field
    named = {t.get("model") if isinstance(t, dict) else t for t in targets}
    if default in named:
        return
    data["targets"] = [*targets, default]
    weights = data.get("weights")
    if isinstance(weights, list) and len(weights) == len(targets):
        data["weights"] = [*weights, 0]  # a fallback only


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
