"""Script routers: which router a request names, running its script, and what its answer routes to.

A request names a script router in its ``router`` object: ``{"name": "kg_random_router"}`` for one of the
config's ``routers:``, or ``{"type": "script", "script": "..."}`` for its own script, which only a project
with ``request_scripts: true`` may send. The script's ``route({request, headers, models, metrics})`` gets:

- ``request``: the request body, without its ``router``;
- ``headers``: the request's headers (names in lower case), without credentials and cookies;
- ``models``: the models the gateway knows by name (``[{id, provider, model}]``): the configured ones of each
  provider, and every target of a virtual model;
- ``metrics``: the live figures of every target tried lately, ``{"provider/model": {latency, ttft,
  error_rate}}`` (seconds; ``null`` when none was measured).

It returns ``{model: "provider/model"}``, ``{targets: ["provider/model", ...]}`` (tried in order, as a
fallback router's), or ``{model: null}`` (or nothing) for the request's own model. A script that throws,
runs past its limits or names a model the gateway cannot route gets a 400 ``router_script_<kind>`` (its
router's ``on_error: reject``) or the request's model (``on_error: fallback``, when the request names
one). Every run is traced on the request's span as ``relaygate.router.*``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from opentelemetry import trace

from relaygate.context import RequestContext
from relaygate.errors import GatewayError, InvalidRequestError
from relaygate.routing.request import ScriptSpec
from relaygate.routing.scripts import ScriptEngine, ScriptError, ScriptFailure
from relaygate.settings import ScriptLimits, ScriptRouterSettings

__all__ = ["ScriptRouters"]

# Never handed to a script: credentials of the caller or of a provider, and cookies.
PRIVATE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-admin-key",
        "lb-llm-key",
        "x-provider-key",
    }
)
# The most targets a script may list.
MAX_TARGETS = 10

ROUTER_NAME = "relaygate.router.name"
ROUTER_TYPE = "relaygate.router.type"
ROUTER_OUTCOME = "relaygate.router.outcome"
ROUTER_ERROR = "relaygate.router.error"
ROUTER_TARGETS = "relaygate.router.targets"
ROUTER_DURATION = "relaygate.router.duration_ms"


class ScriptRouters:
    """The config's named script routers, the limits of request-carried ones and the engine running them.

    ``projects`` are the ids of the projects whose requests may carry their own script.
    """

    def __init__(
        self,
        routers: Mapping[str, ScriptRouterSettings] | None = None,
        *,
        limits: ScriptLimits | None = None,
        projects: Collection[str] = (),
        engine: ScriptEngine | None = None,
    ) -> None:
        self.limits = limits if limits is not None else ScriptLimits()
        self.routers = {
            name: (router.script, router.limits_over(self.limits)) for name, router in (routers or {}).items()
        }
        self.projects = frozenset(projects)
        self.engine = engine if engine is not None else ScriptEngine()

    async def decide(
        self,
        spec: ScriptSpec,
        *,
        default: str | None,
        ctx: RequestContext,
        body: Mapping[str, Any],
        headers: Iterable[tuple[bytes, bytes]],
        models: Callable[[], list[dict[str, str]]],
        metrics: Callable[[], dict[str, dict[str, float | None]]],
        check: Callable[[str], None],
    ) -> tuple[str, ...]:
        """The model names the request goes to, in order: the script's choice, or ``default`` on a fallback.

        ``check`` raises a :class:`GatewayError` for a name the gateway cannot route."""
        name, script, limits, owner = self._router(spec, ctx)
        argument = {
            "request": {key: value for key, value in body.items() if key != "router"},
            "headers": {
                key.decode("latin-1").lower(): value.decode("latin-1")
                for key, value in headers
                if key.decode("latin-1").lower() not in PRIVATE_HEADERS
            },
            "models": models(),
            "metrics": metrics(),
        }
        chosen: tuple[str, ...] = ()
        started = time.perf_counter()
        span = trace.get_current_span()
        attributes: dict[str, Any] = {ROUTER_TYPE: "script"}
        if name is not None:
            attributes[ROUTER_NAME] = name
        try:
            answer = await self.engine.run(
                owner,
                script,
                argument,
                timeout_ms=limits.timeout_ms,
                max_memory_mb=limits.max_memory_mb,
                pinned=spec.script is None,
            )
            chosen = _chosen(answer, default)
            for index, model in enumerate(chosen):
                try:
                    check(model)
                except GatewayError as error:
                    where = "model" if len(chosen) == 1 else f"targets[{index}]"
                    problem = f"returned {where} '{model}', which cannot be routed: {error.message}"
                    raise ScriptError("invalid", problem) from None
            attributes[ROUTER_OUTCOME] = "chosen"
            return chosen
        except ScriptError as error:
            attributes[ROUTER_ERROR] = error.failure.kind
            if limits.on_error == "fallback" and default is not None:
                attributes[ROUTER_OUTCOME] = "fallback"
                chosen = (default,)
                return chosen
            attributes[ROUTER_OUTCOME] = "error"
            raise _refusal(name, error.failure) from None
        finally:
            attributes[ROUTER_DURATION] = (time.perf_counter() - started) * 1000
            if chosen:
                attributes[ROUTER_TARGETS] = list(chosen)
            if span.is_recording():
                span.set_attributes(attributes)

    def _router(self, spec: ScriptSpec, ctx: RequestContext) -> tuple[str | None, str, ScriptLimits, str]:
        if spec.script is None:
            assert spec.name is not None  # parse_router gives a script or a name
            found = self.routers.get(spec.name)
            if found is None:
                known = ", ".join(sorted(self.routers)) or "none are configured"
                raise InvalidRequestError(
                    f"No router named '{spec.name}' in the gateway's config (routers: {known}).",
                    param="router.name",
                    code="router_not_found",
                )
            return spec.name, found[0], found[1], f"router:{spec.name}"
        if ctx.project_id not in self.projects:
            raise InvalidRequestError(
                "This project does not run scripts sent in requests (router.script): name a router of the gateway's "
                'config ({"router": {"name": "..."}}), or set request_scripts: true on the project.',
                param="router.script",
                code="router_script_not_allowed",
            )
        return spec.name, spec.script, self.limits, f"project:{ctx.project_id}"

    def close(self) -> None:
        self.engine.close()


def _chosen(answer: Any, default: str | None) -> tuple[str, ...]:
    """The model names a script's answer routes to."""
    if isinstance(answer, str):
        answer = {"model": answer}
    if answer is None or (isinstance(answer, dict) and answer.get("model") is None and answer.get("targets") is None):
        if default is None:
            raise ScriptError("invalid", "returned no model, and the request names none (model: router/dynamic)")
        return (default,)
    if not isinstance(answer, dict):
        raise ScriptError("invalid", "returned something that is not {model} or {targets}")
    if answer.get("targets") is not None:
        targets = answer["targets"]
        if not isinstance(targets, list) or not targets or len(targets) > MAX_TARGETS:
            raise ScriptError("invalid", f"returned targets that are not a list of 1 to {MAX_TARGETS} model names")
        names = [t.get("model") if isinstance(t, dict) else t for t in targets]
    else:
        names = [answer["model"]]
    out = tuple(name for name in names if isinstance(name, str) and 0 < len(name) <= 256)
    if len(out) != len(names):
        raise ScriptError("invalid", "returned a model that is not a model name")
    return out


def _refusal(name: str | None, failure: ScriptFailure) -> InvalidRequestError:
    which = f"The router script '{name}'" if name else "The router script"
    return InvalidRequestError(
        f"{which} {failure.message}.", param="router.script", code=f"router_script_{failure.kind}"
    )
