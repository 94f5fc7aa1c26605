"""Model names to plans: ``provider/model``, a bare name for the default provider, or a virtual model.

A requested model is first looked up among the config's ``model_aliases`` (:mod:`.aliases`): an alias is
routed as the name it stands for, and its targets' routes keep the name the client asked for. Then it is,
in this order:

1. ``router/dynamic``, or any model beside a ``router`` object: the request's own router (:mod:`.request`),
   whose default target the model is; with ``router/dynamic``, when the object has a ``name``, its
   targets' routes say ``router/<name>`` as the requested model, so that the ledger and the traces tell
   one named router from another. A script router (:mod:`.scripted`) runs in :meth:`ModelRouter.prepare`,
   before the limits and the proxy plan the request;
2. a virtual model of the config, asked for by its name (``smart``) or as ``router/smart``; a virtual
   model's name therefore wins over the same bare name sent to ``default_provider``;
3. ``provider/model``, the part before the first ``/`` being a provider's name, or an alias of one
   (``google`` for ``gemini``: :mod:`relaygate.settings.presets`); a request that brings its own provider
   key (``ctx.caller_key``) may also name a preset that is not configured (``together/...``), which is
   then made once, without a key of its own;
4. a bare name, sent to ``default_provider`` when there is one (and a name with a ``/`` that the default
   provider lists whole among its ``models``: ``meta-llama/Llama-3.1-8B`` on a vLLM).

A prefix that names a preset nobody configured is a 400 ``provider_not_configured`` saying how to
configure it; a prefix that names no provider at all is a 404 ``model_not_found`` naming the prefix and
the providers, default provider or not; any other unknown name is a 404 ``model_not_found`` too.

Names of the first two kinds give a plan of several targets in their strategy's order; the others give
a plan of one target. Every plan carries the retry settings that bound its attempts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from relaygate.context import RequestContext, Route
from relaygate.errors import GatewayError, InvalidRequestError, ModelNotFoundError
from relaygate.pricing import PriceBook
from relaygate.providers.base import Provider
from relaygate.routing.aliases import Aliases
from relaygate.routing.breaker import CircuitBreaker
from relaygate.routing.conditions import Facts, parse_when
from relaygate.routing.metrics import TargetMetrics
from relaygate.routing.plan import Plan, Target, VirtualModel
from relaygate.routing.request import ScriptSpec, parse_router
from relaygate.routing.scripted import ScriptRouters
from relaygate.routing.strategies import order
from relaygate.settings import (
    DYNAMIC_MODEL,
    ROUTER_PREFIX,
    BreakerSettings,
    ConfigError,
    Preset,
    RetrySettings,
    ScriptLimits,
    ScriptRouterSettings,
    TargetSettings,
    VirtualModelSettings,
    configured_name,
    preset,
)

__all__ = ["ModelRouter"]

DYNAMIC = f"{ROUTER_PREFIX}/{DYNAMIC_MODEL}"


class ModelRouter:
    """Resolves model names and orders virtual models' targets; holds the targets' breakers and figures.

    ``rng`` drives the percentage, random and optimized strategies and the backoff jitter: pass a
    seeded ``random.Random`` for repeatable routing. ``prices`` prices targets for ``metric: cost``
    (the shipped catalogue when not given). ``presets`` makes the provider of a preset that is not
    configured, for requests that bring their own key; without it such requests are refused as any
    unconfigured provider is.
    """

    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        default_provider: str | None = None,
        models: Mapping[str, VirtualModelSettings] | None = None,
        retry: RetrySettings | None = None,
        breaker: BreakerSettings | None = None,
        rng: random.Random | None = None,
        metrics: TargetMetrics | None = None,
        prices: PriceBook | None = None,
        aliases: Mapping[str, str] | None = None,
        presets: Callable[[Preset], Provider] | None = None,
        routers: Mapping[str, ScriptRouterSettings] | None = None,
        script_limits: ScriptLimits | None = None,
        script_projects: Collection[str] = (),
    ) -> None:
        self.providers = dict(providers)
        self.aliases = Aliases(aliases or {})
        self.make_preset = presets
        # Providers made from presets for requests that bring their own key, once each (closed with the others).
        self.preset_providers: dict[str, Provider] = {}
        self.default_provider = default_provider
        self.retry = retry if retry is not None else RetrySettings()
        self.rng = rng if rng is not None else random.Random()
        self.breaker = CircuitBreaker(breaker)
        self.metrics = metrics if metrics is not None else TargetMetrics()
        self._prices = prices
        self.virtual: dict[str, VirtualModel] = {}
        for name, settings in (models or {}).items():
            self.virtual[name] = self._compile(name, settings, _config_error(f"models.{name}"))
        # Script routers: the config's named ones, and the projects whose requests may carry their own.
        self.scripts = ScriptRouters(routers, limits=script_limits, projects=script_projects)

    def resolve(self, requested: str, *, param: str = "model", caller_key: bool = False) -> Route:
        """The provider route of a ``provider/model`` (or bare, default-provider) name; ``caller_key``: the
        request brings its own provider key, so an unconfigured preset may serve it."""
        if not requested.isprintable():
            raise ModelNotFoundError("Model names may not hold control characters.", param=param)
        prefix, slash, model = requested.partition("/")
        provider = self.provider(prefix, caller_key=caller_key) if slash else None
        if provider is None and self.default_provider is not None:
            default = self.providers[self.default_provider]
            # A prefix that names no provider is an error, not a model of the default provider: unless that
            # provider lists the whole name among its models (a vLLM serving meta-llama/Llama-3.1-8B).
            if not slash or (default.settings.models is not None and default.accepts(requested)):
                provider, model = default, requested
        if provider is None:
            raise self._unknown(requested, prefix if slash else None, param)
        if not model or not provider.accepts(model):
            raise ModelNotFoundError(
                f"The model '{requested}' does not exist: provider '{provider.name}' does not serve '{model}'.",
                param=param,
            )
        return Route(provider=provider, model=model, requested=requested)

    def provider(self, name: str, *, caller_key: bool = False) -> Provider | None:
        """The provider a model prefix names: a configured one (or the one it is an alias of), else, for a
        request with its own key, the preset of that name; ``None`` when there is none."""
        configured = configured_name(name, self.providers)
        if configured is not None:
            return self.providers[configured]
        found = preset(name) if caller_key and self.make_preset is not None else None
        if found is None or self.make_preset is None:
            return None
        made = self.preset_providers.get(found.name)
        if made is None:
            made = self.preset_providers[found.name] = self.make_preset(found)
        return made

    def _unknown(self, requested: str, prefix: str | None, param: str) -> GatewayError:
        known = preset(prefix) if prefix is not None else None
        if known is not None:
            variables = " or ".join(known.key_variables)
            return InvalidRequestError(
                f"The provider '{prefix}' of model '{requested}' is not configured: set {variables} where the "
                f"gateway runs, add '{known.name}' under providers:, or send your own {known.name} key in the "
                "LB-LLM-Key header (for a project with byok: true).",
                param=param,
                code="provider_not_configured",
            )
        providers = ", ".join(sorted(self.providers))
        if prefix is not None:
            return ModelNotFoundError(
                f"The model '{requested}' does not exist: no provider is named '{prefix}'. Name models as "
                f"provider/model (or map the name in model_aliases); the providers are: {providers}.",
                param=param,
            )
        return ModelNotFoundError(
            f"The model '{requested}' does not exist. Name models as provider/model (or map the name in "
            f"model_aliases); the providers are: {providers}.",
            param=param,
        )

    async def prepare(
        self,
        requested: str,
        body: Mapping[str, Any],
        *,
        ctx: RequestContext,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Run the request's script router, when it has one, and keep its choice on ``ctx`` (once per
        request): :meth:`plan` and :meth:`reachable` route by it. Raises the router's 400s."""
        raw = body.get("router")
        if ctx.router_refusal is not None:
            raise ctx.router_refusal
        if raw is None or ctx.router_choice is not None:
            return
        routed = self.aliased(requested)
        default = None if routed == DYNAMIC else routed
        spec, _ = parse_router(raw, default=default)
        if not isinstance(spec, ScriptSpec):
            return
        caller_key = ctx.caller_key is not None

        def check(name: str) -> None:
            if name in self.virtual or name == DYNAMIC:
                raise InvalidRequestError(f"'{name}' is a virtual model; a script names provider/model")
            self.resolve(self.aliased(name), caller_key=caller_key)

        try:
            ctx.router_choice = await self.scripts.decide(
                spec,
                default=default,
                ctx=ctx,
                body=body,
                headers=headers,
                models=self._known_models,
                metrics=self._figures,
                check=check,
            )
        except GatewayError as error:
            ctx.router_refusal = error
            raise

    def _known_models(self) -> list[dict[str, str]]:
        names = [f"{p.name}/{m}" for p in self.providers.values() for m in (p.settings.models or [])]
        names += self.target_keys()
        out = []
        for name in dict.fromkeys(names):
            provider, _, model = name.partition("/")
            out.append({"id": name, "provider": provider, "model": model})
        return out

    def _figures(self) -> dict[str, dict[str, float | None]]:
        return {
            key: {metric: self.metrics.figure(key, metric) for metric in ("latency", "ttft", "error_rate")}
            for key in self.metrics.keys()
        }

    def plan(
        self,
        requested: str,
        body: Mapping[str, Any],
        *,
        ctx: RequestContext | None = None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> Plan:
        """The targets to try for ``requested``, in order, and the retry settings that bound the attempts."""
        routed = self.aliased(requested)
        virtual = self._virtual(routed, body, ctx)
        if virtual is None:
            caller_key = ctx is not None and ctx.caller_key is not None
            return Plan((_asked(Target(self.resolve(routed, caller_key=caller_key)), requested),), self.retry)

        def facts() -> Facts:
            return Facts(
                user=(ctx.user if ctx is not None else None) or {},
                headers={name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(list(headers))},
                params=body,
                project=ctx.project_id if ctx is not None else None,
            )

        targets = order(virtual, rng=self.rng, metrics=self.metrics, price_of=self._price_of, facts=facts)
        if routed != requested:
            targets = tuple(_asked(target, requested) for target in targets)
        return Plan(targets, virtual.retry)

    def aliased(self, requested: str) -> str:
        """The name ``requested`` is routed as: its alias's target, or itself (see :mod:`.aliases`)."""
        if not self.aliases:
            return requested
        prefix, slash, name = requested.partition("/")
        known = requested in self.virtual or (slash and (prefix == ROUTER_PREFIX or self.provider(prefix) is not None))
        return self.aliases.lookup(requested, patterns=not known) or requested

    def reachable(
        self, requested: str, body: Mapping[str, Any], *, ctx: RequestContext | None = None
    ) -> tuple[Target, ...]:
        """Every target a request for ``requested`` may be sent to: a virtual model's targets and those of all
        its routes, whichever its strategy tries first or falls back to. What the limits reserve for."""
        routed = self.aliased(requested)
        virtual = self._virtual(routed, body, ctx)
        if virtual is None:
            caller_key = ctx is not None and ctx.caller_key is not None
            return (_asked(Target(self.resolve(routed, caller_key=caller_key)), requested),)
        return virtual.all_targets()

    def target_keys(self) -> list[str]:
        """Every configured target (``provider/model``)."""
        return sorted({key for model in self.virtual.values() for key in model.target_keys()})

    def _virtual(
        self, requested: str, body: Mapping[str, Any], ctx: RequestContext | None = None
    ) -> VirtualModel | None:
        if requested == DYNAMIC or body.get("router") is not None:
            return self._requests_router(requested, body, ctx)
        virtual = self.virtual.get(requested)
        prefix, slash, name = requested.partition("/")
        if virtual is None and slash and prefix == ROUTER_PREFIX:
            virtual = self.virtual.get(name)
            if virtual is None:
                known = ", ".join([DYNAMIC, *sorted(self.virtual)])
                raise ModelNotFoundError(
                    f"The virtual model '{name}' does not exist; the virtual models are: {known}.", param="model"
                )
        return virtual

    def _requests_router(self, requested: str, body: Mapping[str, Any], ctx: RequestContext | None) -> VirtualModel:
        """The request's own router as a virtual model; beside a model (not ``router/dynamic``), the model
        is its default target and the routes keep the model's name as the one asked for."""
        dynamic = requested == DYNAMIC
        settings, name = parse_router(body.get("router"), default=None if dynamic else requested)
        # A named router/dynamic is recorded by its name (route, ledger, spans), as if it were router/<name>.
        routed = (f"{ROUTER_PREFIX}/{name}" if name is not None else DYNAMIC) if dynamic else requested
        if isinstance(settings, ScriptSpec):
            chosen = ctx.router_choice if ctx is not None else None
            if chosen is None:
                # Not run (a caller that only asks where a request may go): the router's default target.
                if dynamic:
                    raise InvalidRequestError(
                        "The script router has not run for this request.", param="router", code="invalid_value"
                    )
                chosen = (requested,)
            settings = VirtualModelSettings(strategy="fallback", targets=[self.aliased(m) for m in chosen])
        model = self._compile(name or routed, settings, _request_error, requested=routed)
        # A client may ask for fewer attempts and shorter waits than the operator allows, never more.
        bounded = {
            field: min(getattr(model.retry, field), getattr(self.retry, field))
            for field in ("max_attempts", "deadline", "max_retry_after")
        }
        return replace(model, retry=model.retry.model_copy(update=bounded))

    def _compile(
        self,
        name: str,
        settings: VirtualModelSettings,
        fail: Callable[[str, str], Exception],
        *,
        requested: str | None = None,
    ) -> VirtualModel:
        def targets(where: str, written: list[TargetSettings]) -> tuple[Target, ...]:
            return tuple(
                self._target(f"{where}[{i}]", target, requested or name, fail) for i, target in enumerate(written)
            )

        routes = tuple(
            (parse_when(route.when), targets(f"routes[{r}].targets", route.targets))
            for r, route in enumerate(settings.routes)
        )
        return VirtualModel(
            name=name,
            strategy=settings.strategy,
            targets=targets("targets", settings.targets),
            retry=settings.retry_over(self.retry),
            weights=_normalised(settings.weights or ()),
            metric=settings.metric,
            explore=settings.explore,
            routes=routes,
            description=settings.description,
        )

    def _target(
        self, where: str, target: TargetSettings, requested: str, fail: Callable[[str, str], Exception]
    ) -> Target:
        if target.model in self.virtual or target.model == DYNAMIC:
            raise fail(where, f"'{target.model}' is a virtual model; targets name provider/model")
        try:
            route = self.resolve(target.model)
        except GatewayError as error:
            raise fail(where, error.message) from None
        return Target(Route(provider=route.provider, model=route.model, requested=requested), target.overrides)

    def _price_of(self, target: Target) -> float | None:
        if self._prices is None:
            self._prices = PriceBook()
        provider = target.route.provider
        price = self._prices.price(provider.kind, target.route.model, provider_name=provider.name)
        if price is None or price.input is None:
            return None
        return float(price.input + (price.output or 0))


def _asked(target: Target, requested: str) -> Target:
    """``target`` as the answer to a request for ``requested`` (the name the client sent, an alias)."""
    if target.route.requested == requested:
        return target
    return replace(target, route=replace(target.route, requested=requested))


def _normalised(weights: Sequence[float]) -> tuple[float, ...]:
    """The weights scaled to at most 1, so that their sum stays finite however large they are written
    ([1e308, 1e308] would add up to infinity, and every draw would land on the last target)."""
    top = max(weights, default=0.0)
    return tuple(weight / top for weight in weights) if top > 0 else tuple(weights)


def _config_error(prefix: str) -> Callable[[str, str], Exception]:
    def fail(where: str, problem: str) -> Exception:
        return ConfigError(f"{prefix}.{where}: {problem}")

    return fail


def _request_error(where: str, problem: str) -> Exception:
    param = f"router.{where}"
    return InvalidRequestError(f"Invalid value for '{param}': {problem}", param=param, code="invalid_value")
