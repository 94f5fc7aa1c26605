"""mkdocs hook: renders reference/http-api.md from relaygate's OpenAPI document at build time.

The page holds a marker; the hook puts the reference generated from the document (the one
``GET /openapi.json`` serves and ``relaygate openapi`` prints) in its place. Nothing is fetched.
"""

from __future__ import annotations

from typing import Any

from relaygate import Gateway, Settings
from relaygate.openapi.markdown import render_markdown

PAGE = "reference/http-api.md"
MARKER = "<!-- openapi-reference -->"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its {MARKER} marker: the HTTP API reference has nowhere to go")
    # The embedded default's gateway: its routes are every gateway's (they do not depend on the config).
    document = Gateway(Settings(database=None)).openapi.document()
    return markdown.replace(MARKER, render_markdown(document))
