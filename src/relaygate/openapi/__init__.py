"""relaygate's OpenAPI 3.1 document: built from the routes the gateway's apps dispatch on, served at
``GET /openapi.json`` and printed by ``relaygate openapi``."""

from __future__ import annotations

from relaygate.openapi.document import OpenApiDocument, build_document

__all__ = ["OpenApiDocument", "build_document"]
