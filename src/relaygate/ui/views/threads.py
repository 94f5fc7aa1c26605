"""Threads: the most recently active first, with cost and turns; and one thread's conversation as the models saw
it (the redactions guards made included), its calls and its cost."""

from __future__ import annotations

from starlette.responses import Response

from relaygate.errors import InvalidRequestError, NotFoundError
from relaygate.store import CallFilter, CallRecord, ThreadCursor
from relaygate.ui.sources import Sources
from relaygate.ui.viewer import UiRequest
from relaygate.ui.views.common import page, partial_or_page

__all__ = ["thread", "threads"]

PAGE_SIZE = 50
MESSAGES_PAGE = 500
MAX_THREAD_CALLS = 500


async def threads(req: UiRequest, src: Sources) -> Response:
    before = None
    if req.query.get("before"):
        try:
            before = ThreadCursor.decode(req.query["before"])
        except ValueError:
            raise InvalidRequestError("'before' is not a page of this list.", param="before") from None
    store = await src.store()
    found = await store.recent_threads(req.projects(), limit=PAGE_SIZE + 1, before=before)
    rows, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    last = rows[-1] if more else None
    older = ThreadCursor(last.last_seen, last.project_id or "", last.thread_id).encode() if last else None
    return partial_or_page(
        req,
        src,
        "threads",
        nav="threads",
        rows=rows,
        older=older,
        paged=before is not None,
        many_projects=len(req.signed_in.projects) > 1,
    )


async def thread(req: UiRequest, src: Sources) -> Response:
    project, thread_id = req.params["project"], req.params["id"]
    if project not in req.signed_in.projects:
        raise NotFoundError("There is no such thread in your projects.")
    offset_text = req.query.get("offset", "0")
    if not (offset_text.isdigit() and len(offset_text) <= 9):
        raise InvalidRequestError("'offset' is a number of messages.", param="offset")
    offset = int(offset_text)
    store = await src.store()
    cost = await store.thread_cost(project, thread_id)
    if cost is None:
        raise NotFoundError("There is no such thread in your projects.")
    messages = await store.thread_messages(project, thread_id, limit=MESSAGES_PAGE, offset=offset)
    calls = await store.recent_calls([project], CallFilter(thread=thread_id), limit=MAX_THREAD_CALLS)
    calls.reverse()  # the conversation reads oldest first
    by_id: dict[str, CallRecord] = {str(c.id): c for c in calls}
    # Per call: what its output guards redacted (shown on its answer) and its input guards (on its prompt).
    redacted = {
        str(c.id): tuple(
            [(str(g.get("id")), int(g.get("redactions") or 0)) for g in c.guards
             if g.get("redactions") and (g.get("stage") == "output") == output]
            for output in (True, False)
        )
        for c in calls
    }  # fmt: skip
    return page(
        req,
        src,
        "thread.html",
        nav="threads",
        thread_project=project,
        thread_id=thread_id,
        cost=cost,
        messages=messages.items,
        total_messages=messages.total,
        offset=offset,
        page_size=MESSAGES_PAGE,
        calls=calls,
        calls_by_id=by_id,
        redacted_by_call=redacted,
        redactions=sum(int(g.get("redactions") or 0) for c in calls for g in c.guards),
    )
