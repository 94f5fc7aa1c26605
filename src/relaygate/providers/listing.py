"""An upstream's model list, asked for at most once every few minutes.

``GET /v1/models`` lists the models of every provider whose config names none, so each adapter asks its
upstream (:meth:`Provider.fetch_models`) and :class:`ModelList` keeps the answer for
:data:`MODEL_LIST_TTL` seconds. A list that cannot be had (an error status, a timeout, a body of another
shape) is logged and answered as empty; it is not kept, so the next call asks again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson

from relaygate.errors import GatewayError

__all__ = ["MODEL_LIST_TIMEOUT", "MODEL_LIST_TTL", "ModelList", "data_ids"]

logger = logging.getLogger("relaygate.providers")

MODEL_LIST_TTL = 300.0
MODEL_LIST_TIMEOUT = 5.0
# What a failed listing raises: the request's own errors, the time limit, and a body of another shape.
LISTING_ERRORS = (GatewayError, TimeoutError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError)


class ModelList:
    """The names ``fetch`` returns, kept for :data:`MODEL_LIST_TTL` seconds."""

    def __init__(self, provider: str, fetch: Callable[[], Awaitable[list[str]]]) -> None:
        self.provider = provider
        self._fetch = fetch
        self._listed: tuple[float, list[str]] | None = None

    async def get(self) -> list[str]:
        now = time.monotonic()
        if self._listed is not None and now - self._listed[0] < MODEL_LIST_TTL:
            return self._listed[1]
        try:
            with anyio.fail_after(MODEL_LIST_TIMEOUT):
                models = await self._fetch()
        except LISTING_ERRORS as exc:
            logger.warning("could not list the models of provider %s: %s", self.provider, exc)
            return []
        self._listed = (now, models)
        return models


def data_ids(page: Any) -> list[str]:
    """The ids of an OpenAI-style list, ``{"data": [{"id": ...}, ...]}`` (Anthropic's has the same shape)."""
    return [entry["id"] for entry in page["data"] if isinstance(entry, dict) and isinstance(entry.get("id"), str)]
