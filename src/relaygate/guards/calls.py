"""Model calls of guards, made in-process through relaygate's own providers (never over HTTP to itself).

A chat call gets its own GenAI span like any upstream call (on a context of its own, so that the
request's usage and finish reasons stay the request's); its usage goes on the guard's result, where
the ledger prices it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import anyio
import orjson

from relaygate.context import RequestContext, Route, Usage
from relaygate.errors import GatewayError
from relaygate.guards.base import GuardEnv, GuardFailure
from relaygate.providers.base import Provider, json_answer, read_all

__all__ = ["chat", "post_json"]


async def chat(
    env: GuardEnv, ctx: RequestContext, route: Route, body: dict[str, Any], *, timeout: float
) -> tuple[dict[str, Any], Usage | None]:
    """The OpenAI answer of ``route``'s model to ``body``, and its usage."""
    call = RequestContext(
        trace_id=ctx.trace_id,
        run_id=ctx.run_id,
        thread_id=ctx.thread_id,
        label=ctx.label,
        project_id=ctx.project_id,
        key=ctx.key,
        endpoint="chat",
        body=body,
        route=route,
    )
    status, error = 0, None
    attempt: AbstractContextManager[None] = (
        env.telemetry.attempt(call, route, "chat", body, stream=False).current()
        if env.telemetry is not None
        else nullcontext()
    )
    try:
        with anyio.fail_after(timeout):
            with attempt:
                response = await route.provider.open("chat", body, route.model, stream=False)
            raw = await read_all(response)
        answer = orjson.loads(route.provider.response_body("chat", raw, call))
        status = 200
        return answer, call.usage
    except TimeoutError:
        status, error = 504, "guard_timeout"
        raise GuardFailure(
            f"its model '{route.requested}' did not answer within {timeout:g} s", upstream=True, **_who(route)
        ) from None
    except GatewayError as exc:
        ctx.scrub(exc)
        status, error = exc.status, exc.code or exc.type
        raise GuardFailure(
            f"its model '{route.requested}' failed ({exc.status} {exc.code or exc.type})", upstream=True, **_who(route)
        ) from None
    finally:
        call.record_end(status or 499, error)


async def post_json(
    provider: Provider, path: str, payload: dict[str, Any], *, timeout: float, ctx: RequestContext
) -> dict[str, Any]:
    """POST ``payload`` to ``path`` of an OpenAI-compatible provider for ``ctx``'s request; its JSON answer."""
    try:
        with anyio.fail_after(timeout):
            response = await provider.post(provider.base_url + path, payload)
            return json_answer(await read_all(response), provider.name)
    except TimeoutError:
        raise GuardFailure(
            f"provider '{provider.name}' did not answer {path} within {timeout:g} s", upstream=True
        ) from None
    except GatewayError as exc:
        ctx.scrub(exc)
        raise GuardFailure(
            f"provider '{provider.name}' failed on {path} ({exc.status} {exc.code or exc.type})", upstream=True
        ) from None


def _who(route: Route) -> dict[str, Any]:
    return {"provider": route.provider.name, "model": route.model}
