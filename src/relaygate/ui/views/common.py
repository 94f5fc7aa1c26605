"""What every page shares: rendering with the common context, error pages, and reading a page's query."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from relaygate.errors import InvalidRequestError
from relaygate.ui.sources import Sources
from relaygate.ui.viewer import UiRequest
from relaygate.ui.windows import PERIODS, Window, WindowError, window_of

__all__ = ["error_page", "page", "partial_or_page", "window"]

TITLES = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found", 405: "Not allowed"}


def page(req: UiRequest, src: Sources, template: str, *, status: int = 200, **values: Any) -> Response:
    context = req.context(
        v=src.asset_version,
        refresh=src.settings.refresh_seconds,
        periods=PERIODS,
        ledger_on=src.ledger is not None,
        **values,
    )
    return src.renderer.html(template, context, status=status)


def partial_or_page(req: UiRequest, src: Sources, name: str, **values: Any) -> Response:
    """The page's refreshable part alone for htmx (``_name.html``), else the whole page (``name.html``)."""
    return page(req, src, f"_{name}.html" if req.htmx else f"{name}.html", **values)


def error_page(
    req: UiRequest, src: Sources, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    title = TITLES.get(status, "The dashboard cannot answer")
    response = page(req, src, "error.html", status=status, title=title, message=message)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def window(req: UiRequest) -> Window:
    try:
        return window_of(req.query)
    except WindowError as exc:
        raise InvalidRequestError(str(exc), param="period") from None
