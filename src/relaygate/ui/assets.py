"""The dashboard's static files (``static/``: its CSS and JavaScript, htmx and uPlot), read once from the package.

Nothing is fetched from a CDN and nothing is built at install: the files ship in the wheel as they are.
Pages link them with ``?v=<version>`` (a hash of their contents), so a browser may keep them for a long time
and still gets new ones after an upgrade.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from starlette.responses import Response
from starlette.types import Scope

from relaygate._asgi import header

__all__ = ["Asset", "Assets", "load", "response"]

TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class Assets:
    files: dict[str, Asset]
    version: str


def load() -> Assets:
    found: dict[str, Asset] = {}
    for entry in files("relaygate.ui").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in TYPES:
            body = entry.read_bytes()
            found[entry.name] = Asset(body, TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    version = hashlib.sha256("".join(sorted(a.etag for a in found.values())).encode()).hexdigest()[:12]
    return Assets(found, version)


def response(assets: Assets, name: str, scope: Scope) -> Response:
    asset = assets.files.get(name)
    if asset is None or scope["method"] not in ("GET", "HEAD"):
        return Response("Not found", status_code=404, media_type="text/plain")
    headers = {
        "etag": asset.etag,
        "cache-control": "public, max-age=31536000, immutable",
        "x-content-type-options": "nosniff",
    }
    if header(scope, b"if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
