"""``moderation``: an OpenAI-compatible ``/moderations`` endpoint of a configured provider judges the text.

Parameters: ``provider`` (the name of an ``openai``-kind provider in ``providers:``), ``model``
(default ``omni-moderation-latest``), ``categories`` (only these count; default: the endpoint's own
``flagged``) and ``threshold`` (a category counts when its score reaches it, instead of ``flagged``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from relaygate.context import RequestContext
from relaygate.guards.base import Guard, GuardEnv, GuardFailure, GuardSpec, Parameters, parse_parameters
from relaygate.guards.calls import post_json
from relaygate.guards.results import Verdict

__all__ = ["ModerationGuard"]


class ModerationParameters(Parameters):
    provider: str
    model: str = "omni-moderation-latest"
    categories: list[str] | None = None
    threshold: float | None = Field(None, ge=0, le=1)
    timeout: float = Field(30.0, gt=0)


class ModerationGuard(Guard):
    type = "moderation"
    calls_model = True

    def __init__(self, spec: GuardSpec, env: GuardEnv) -> None:
        super().__init__(spec, env)
        self.parameters = parameters = parse_parameters(ModerationParameters, spec.parameters)
        providers = env.router.providers if env.router is not None else {}
        provider = providers.get(parameters.provider)
        if provider is None:
            raise ValueError(f"parameters.provider: no provider named {parameters.provider!r}")
        if provider.kind not in ("openai", "mock"):
            raise ValueError(f"parameters.provider: {parameters.provider!r} is not OpenAI-compatible (kind openai)")
        self.provider = provider

    async def judge(self, texts: Sequence[str], ctx: RequestContext) -> Verdict:
        inputs = [text for text in texts if text.strip()]
        provider, model = self.provider.name, self.parameters.model
        if not inputs:
            return Verdict(True, provider=provider, model=model)
        answer = await post_json(
            self.provider,
            "/moderations",
            {"model": self.parameters.model, "input": inputs},
            timeout=self.parameters.timeout,
            ctx=ctx,
        )
        results = answer.get("results")
        if not isinstance(results, list) or not all(isinstance(result, dict) for result in results):
            raise GuardFailure(
                "the moderation endpoint answered without results", upstream=True, provider=provider, model=model
            )
        flagged: list[str] = []
        for result in results:
            flagged.extend(self._flagged(result))
        if flagged:
            reason = f"flagged by moderation: {', '.join(dict.fromkeys(flagged))}"
            return Verdict(False, reason, provider=provider, model=model)
        return Verdict(True, provider=provider, model=model)

    def _flagged(self, result: dict[str, Any]) -> list[str]:
        wanted = self.parameters.categories
        threshold = self.parameters.threshold
        if threshold is not None:
            scores = result.get("category_scores") or {}
            return [
                name
                for name, score in scores.items()
                if isinstance(score, int | float) and score >= threshold and (wanted is None or name in wanted)
            ]
        categories = result.get("categories") or {}
        names = [name for name, on in categories.items() if on is True and (wanted is None or name in wanted)]
        if wanted is None and result.get("flagged") is True and not names:
            return ["flagged"]
        return names
