"""``GET /v1/models`` and ``GET /v1/models/{id}`` in Anthropic's shape, for clients that send ``anthropic-version``.

The same models as the OpenAI list (:meth:`~relaygate.proxy.ProxyApp.model_entries`: virtual models,
aliases, the providers' models, registered models), each as ``{"type": "model", "id", "display_name",
"created_at"}``; the list is a page: ``data``, ``first_id``, ``last_id``, ``has_more``, with Anthropic's
``limit`` (1 to 1000, default 20), ``after_id`` and ``before_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from relaygate.errors import NotFoundError
from relaygate.providers.params import invalid

__all__ = ["model_info", "model_page", "one_model"]

JSON = dict[str, Any]

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


def model_info(entry: JSON) -> JSON:
    created = entry.get("created")
    moment = datetime.fromtimestamp(created if isinstance(created, int) else 0, UTC)
    return {
        "type": "model",
        "id": entry["id"],
        "display_name": str(entry.get("description") or entry["id"]) if not entry.get("alias_of") else entry["id"],
        "created_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def model_page(entries: list[JSON], query: bytes) -> JSON:
    """The page of ``entries`` the query string asks for."""
    params = {key: values[-1] for key, values in parse_qs(query.decode("latin-1")).items()}
    limit = params.get("limit", str(DEFAULT_LIMIT))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        raise invalid("limit", f"expected an integer from 1 to {MAX_LIMIT}")
    models = [model_info(entry) for entry in entries]
    ids = [model["id"] for model in models]
    start, end = 0, len(models)
    if "after_id" in params:
        start = _position(ids, params["after_id"], "after_id") + 1
    if "before_id" in params:
        end = _position(ids, params["before_id"], "before_id")
    if "before_id" in params and "after_id" not in params:
        start = max(end - int(limit), 0)  # the page just before before_id
    page = models[start:end][: int(limit)]
    return {
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": start + len(page) < end if "before_id" not in params or "after_id" in params else start > 0,
    }


def one_model(entries: list[JSON], wanted: str) -> JSON:
    for entry in entries:
        if entry["id"] == wanted:
            return model_info(entry)
    raise NotFoundError(f"model: {wanted}", param="model_id", code="model_not_found")


def _position(ids: list[str], wanted: str, param: str) -> int:
    try:
        return ids.index(wanted)
    except ValueError:
        raise invalid(param, f"no model '{wanted}' in the list") from None
