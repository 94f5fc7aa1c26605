"""Where a caller's own provider key goes (``LB-LLM-Key``, see :mod:`relaygate.middleware.byok`).

The key is sent as the credential of every attempt, through a keyed view of the target's provider
(:meth:`~relaygate.providers.base.Provider.keyed`). A key is one provider's: a plan whose targets are on
several providers is refused with a 400 rather than send one provider's key to another.
"""

from __future__ import annotations

from relaygate.context import RequestContext
from relaygate.errors import InvalidRequestError
from relaygate.providers.base import Provider
from relaygate.routing.plan import Plan, Target

__all__ = ["check_one_provider", "provider_for"]


def provider_for(ctx: RequestContext, target: Target) -> Provider:
    """The target's provider, with the caller's own key as its credential when the request brings one."""
    provider = target.route.provider
    return provider if ctx.caller_key is None else provider.keyed(ctx.caller_key.value)


def check_one_provider(plan: Plan) -> None:
    """Refuse a plan spanning several providers (a 400 naming ``model``)."""
    providers = sorted({target.route.provider.name for target in plan.targets})
    if len(providers) > 1:
        requested = plan.targets[0].route.requested
        raise InvalidRequestError(
            f"A provider key sent with the request (LB-LLM-Key) is one provider's, but '{requested}' may be served "
            f"by several ({', '.join(providers)}); name one provider's model.",
            param="model",
            code="caller_key_ambiguous",
        )
