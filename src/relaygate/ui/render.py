"""Rendering the dashboard: the Jinja2 environment (templates shipped in the package), filters, HTML responses.

Autoescaping is on for every template: every value a caller sent (prompts, labels, user ids, thread ids) is
text in the page, never markup. Every link is built from the request's base (``root_path`` + ``/ui``), so
the pages work mounted (``/llm/ui``) and behind a proxy's prefix alike.

Jinja2 is imported at the first page rendered, not with the gateway: most gateways never serve one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import orjson
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    import jinja2

__all__ = ["Renderer", "page_url"]

# Placeholders guards put where they redacted ([EMAIL], [CARD], [REDACTED], ...): marked in the thread's text.
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]{1,30}\]")

# No inline script or style anywhere: every script and style sheet is a file of the package.
SECURITY_HEADERS = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
]


def page_url(base: str, path: str, params: Mapping[str, Any] | None = None) -> str:
    """``base + path`` with the query of ``params`` that have a value."""
    query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")})
    return f"{base}{path}" + (f"?{query}" if query else "")


def usd(value: float | Decimal | None) -> str:
    if value is None:
        return "–"
    amount = float(value)
    if amount == 0:
        return "$0"
    if abs(amount) < 1:
        text = f"{amount:.6f}".rstrip("0")
        whole, _, decimals = text.partition(".")
        return f"${whole}.{decimals.ljust(2, '0')}"
    return f"${amount:,.2f}"


def number(value: float | int | Decimal | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def duration(ms: float | None) -> str:
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def when(value: datetime | None) -> Markup:
    if value is None:
        return Markup("–")
    value = value.astimezone(UTC)
    iso = value.isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}">{}</time>').format(iso, value.strftime("%Y-%m-%d %H:%M:%S"))


def epoch(seconds: int) -> Markup:
    return when(datetime.fromtimestamp(seconds, UTC))


def marked(text: Any) -> Markup:
    """Text with the guards' redaction placeholders marked."""
    escaped = str(escape("" if text is None else str(text)))
    return Markup(_PLACEHOLDER.sub(lambda m: f'<mark class="redaction">{m.group(0)}</mark>', escaped))


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "–"


class Renderer:
    """Renders the package's templates into HTML responses with the dashboard's security headers."""

    @cached_property
    def env(self) -> jinja2.Environment:
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.PackageLoader("relaygate.ui", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            usd=usd, number=number, duration=duration, when=when, epoch=epoch, marked=marked, pretty_json=pretty_json
        )
        env.globals.update(share=share, page_url=page_url, quote=lambda v: quote(str(v), safe=""))
        return env

    def html(
        self,
        template: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        body = self.env.get_template(template).render(**context)
        response = HTMLResponse(body, status_code=status)
        for name, value in SECURITY_HEADERS:
            response.headers[name] = value
        response.headers["vary"] = "HX-Request, Cookie"
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response
