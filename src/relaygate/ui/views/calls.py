"""The calls: the newest first, filtered and paged by cursor; and one call with its attempts, guards and trace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from starlette.responses import Response

from relaygate.errors import InvalidRequestError, NotFoundError
from relaygate.store import CallCursor, CallFilter, Dimension
from relaygate.ui.sources import Sources
from relaygate.ui.viewer import UiRequest
from relaygate.ui.views.common import page, partial_or_page
from relaygate.ui.windows import WindowError, parse_time

__all__ = ["FILTERS", "call", "calls"]

PAGE_SIZE = 50
FILTERS = ("model", "status", "user", "thread", "label", "from", "to")
MAX_FILTER_LENGTH = 256
# Where the model and label choices come from: what was called lately.
CHOICES_WINDOW = timedelta(days=30)


def _filters(req: UiRequest) -> CallFilter:
    values = {name: req.query.get(name, "").strip() or None for name in FILTERS}
    for name, value in values.items():
        if value is not None and len(value) > MAX_FILTER_LENGTH:
            raise InvalidRequestError(f"'{name}' is too long.", param=name)
    status = values["status"]
    if status is not None and status not in ("ok", "error") and not (status.isdigit() and len(status) == 3):
        raise InvalidRequestError("'status' is ok, error or an HTTP status such as 429.", param="status")
    try:
        start = parse_time(values["from"], "from") if values["from"] else None
        end = parse_time(values["to"], "to") if values["to"] else None
    except WindowError as exc:
        raise InvalidRequestError(str(exc), param="from") from None
    if end is not None and len(values["to"] or "") == 10:  # a date alone: up to the end of that day
        end += timedelta(days=1)
    return CallFilter(
        model=values["model"],
        status=status,
        user=values["user"],
        thread=values["thread"],
        label=values["label"],
        start=start,
        end=end,
    )


async def calls(req: UiRequest, src: Sources) -> Response:
    filters = _filters(req)
    before = None
    if req.query.get("before"):
        try:
            before = CallCursor.decode(req.query["before"])
        except ValueError:
            raise InvalidRequestError("'before' is not a page of this list.", param="before") from None
    projects = req.projects()
    store = await src.store()
    found = await store.recent_calls(projects, filters, limit=PAGE_SIZE + 1, before=before)
    rows, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    older = CallCursor(rows[-1].started_at, rows[-1].id).encode() if more else None
    now = datetime.now(UTC)
    models, labels = [], []
    if not req.htmx:  # the filter form's choices: what was called in the last 30 days
        seen = await store.rollups(projects, now - CHOICES_WINDOW, now, [Dimension.MODEL, Dimension.LABEL])
        models = [r.value for r in seen[Dimension.MODEL] if r.value]
        labels = [r.value for r in seen[Dimension.LABEL] if r.value]
    filtered = {name: req.query.get(name, "") for name in FILTERS}
    return partial_or_page(
        req,
        src,
        "calls",
        nav="calls",
        rows=rows,
        older=older,
        paged=before is not None,
        filters=filtered,
        models=models,
        labels=labels,
        many_projects=len(req.signed_in.projects) > 1,
    )


async def call(req: UiRequest, src: Sources) -> Response:
    try:
        call_id = uuid.UUID(req.params["id"])
    except ValueError:
        raise NotFoundError("There is no such call.") from None
    store = await src.store()
    found = await store.find_call(req.signed_in.projects, call_id)
    if found is None:
        raise NotFoundError("There is no such call in your projects.")
    return page(
        req,
        src,
        "call.html",
        nav="calls",
        call=found,
        trace_link=src.settings.trace_link(found.trace_id),
        redactions=sum(int(g.get("redactions") or 0) for g in found.guards),
    )
