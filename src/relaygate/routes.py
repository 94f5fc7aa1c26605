"""The routes relaygate serves: one registry the apps dispatch on, spans are named after and the OpenAPI
document is built from.

A route is declared once, as a :class:`Route` beside the app that serves it (the proxy's in
:mod:`relaygate.endpoints`, the management API's in :mod:`relaygate.api.routes`), with what its
documentation says: summary, tag, request and answer types. An app dispatches on its routes through a
:class:`RouteTable` and exposes them as ``routes``; :func:`stack_routes` collects them from every layer
of a stack, and :mod:`relaygate.openapi` documents exactly those. A new endpoint is therefore documented
by being declared, and ``tests/test_openapi.py`` fails for a path the gateway answers that no route declares.

Adding an endpoint:

1. declare its ``Route`` (method, path template, ``operation_id``, ``summary``, ``tag``, ``body``,
   ``answer``) beside the app that serves it, with pydantic models (or TypedDicts) for its body and answer;
2. dispatch on it: put it in the app's handler table (``ProxyApp``, ``ApiApp``), or, for a layer of its
   own, expose ``routes`` (a sequence of ``Route``) and match paths with a ``RouteTable``;
3. run ``tests/test_openapi.py``: it checks the document against the stack's routes and fuzzes the new
   route with schemathesis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Access", "Match", "Route", "RouteTable", "stack_routes"]

# Who may call a route: any API key (or anyone, on a gateway without keys), the admin key, or anyone.
Access = Literal["key", "admin", "public"]

_PARAM = re.compile(r"\{([a-z_]+)\}")
# A path parameter's value unless the route says otherwise: one segment.
DEFAULT_PARAM_PATTERN = r"[^/]{1,256}"
# The project prefix ProjectScopeMiddleware reads (and strips) before /v1.
PROJECT_PREFIX = re.compile(r"^/([A-Za-z0-9][A-Za-z0-9_.\-]{0,127})(/v1(?:/.*)?)$")


@dataclass(frozen=True, eq=False, slots=True)
class Route:
    """One operation (method and path template) the gateway serves, and its documentation.

    ``path`` is the template below the mount point (``/v1/models/{model}``, ``/threads/{thread_id}/cost``);
    ``patterns`` gives a path parameter's regex where one segment is not right (model ids hold a ``/``).
    ``body`` and ``answer`` are the request and 200 answer types (pydantic models or TypedDicts) the
    document's schemas come from; ``query`` a model whose fields are the query parameters. ``model_call``
    routes pass the ledger, limits and guards (and so may answer 429, 446, 502, 503, 504); a route with
    ``streams`` (the type of an event's data) answers ``text/event-stream`` when the body asks to stream.
    ``errors`` are statuses besides those every route of its kind may answer.
    """

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    description: str = ""
    access: Access = "key"
    body: Any = None
    answer: Any = None
    query: Any = None
    # The type of each event's data when the answer streams (text/event-stream); None when it cannot.
    streams: Any = None
    # What a 200 is: JSON of ``answer``, or another media type (text/html for a page), a string without one.
    media_type: str = "application/json"
    model_call: bool = False
    errors: tuple[int, ...] = ()
    patterns: Mapping[str, str] = field(default_factory=dict)
    # Example request bodies by name: the document shows them, and schemathesis sends them.
    examples: Mapping[str, Any] = field(default_factory=dict)
    # The management API's routes also answer below /v1 (/v1/threads for /threads).
    v1_alias: bool = False
    # Whether the document shows its /{project_id}/v1/... form (admin routes have no project).
    scoped: bool = True
    # The type of the route's error bodies when they are not the gateway's own (an inbound dialect answers its
    # errors in its API's shape: Anthropic's for the Messages API); None: relaygate.errors.ErrorBody.
    error_body: Any = None
    # Answers besides the 200 and the errors, as OpenAPI response objects by status (MCP's 202 to a notification).
    responses: Mapping[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def project_path(self) -> str | None:
        """The ``/{project_id}/v1/...`` form, for a route served below ``/v1``; else ``None``."""
        if self.path.startswith("/v1/"):
            return "/{project_id}" + self.path
        return "/{project_id}/v1" + self.path if self.v1_alias else None


@dataclass(frozen=True, slots=True)
class Match:
    """The routes of a matched path (by method), its parameters and the template as the caller wrote it."""

    methods: Mapping[str, Route]
    params: dict[str, str]
    template: str


class RouteTable:
    """Matches a path (below the mount point) to its routes.

    A route with ``v1_alias`` also matches below ``/v1`` (``/v1/threads`` for ``/threads``); a trailing
    ``/`` is accepted. ``match`` reads the path as the app sees it; ``template`` also accepts the
    ``/{project_id}/v1/...`` form, as the outermost layers see it before the project prefix is stripped.
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        by_path: dict[str, dict[str, Route]] = {}
        for route in self.routes:
            methods = by_path.setdefault(route.path, {})
            if route.method in methods:
                raise ValueError(f"route {route.method} {route.path} is declared twice")
            methods[route.method] = route
        # Fixed paths first: /v1/models must not be read as /v1/models/{model}.
        ordered = sorted(by_path.items(), key=lambda item: "{" in item[0])
        self._compiled = [(self._compile(path, methods), path, methods) for path, methods in ordered]
        # The fixed paths by every path their pattern matches (with the /v1 of an alias, a trailing / and the
        # newline $ lets through), so that most paths are found by one dict lookup; the first route wins, as
        # when the patterns are tried in order. Paths with parameters are matched by their patterns.
        self._fixed: dict[str, tuple[Mapping[str, Route], str]] = {}
        for path, methods in ordered:
            if "{" in path:
                continue
            aliased = any(route.v1_alias for route in methods.values())
            for head in ("", "/v1") if aliased else ("",):
                for tail in ("", "/", "\n", "/\n"):
                    self._fixed.setdefault(head + path + tail, (methods, head + path))
        self._patterned = [entry for entry in self._compiled if "{" in entry[1]]

    def _compile(self, path: str, methods: Mapping[str, Route]) -> re.Pattern[str]:
        patterns: dict[str, str] = {}
        for route in methods.values():
            patterns.update(route.patterns)
        regex = ""
        position = 0
        for found in _PARAM.finditer(path):
            regex += re.escape(path[position : found.start()])
            name = found.group(1)
            regex += f"(?P<{name}>{patterns.get(name, DEFAULT_PARAM_PATTERN)})"
            position = found.end()
        regex += re.escape(path[position:])
        prefix = "(?P<_v1>/v1)?" if any(route.v1_alias for route in methods.values()) else ""
        return re.compile(f"^{prefix}{regex}/?$", re.DOTALL)

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes)

    def __len__(self) -> int:
        return len(self.routes)

    def match(self, path: str) -> Match | None:
        fixed = self._fixed.get(path)
        if fixed is not None:
            return Match(fixed[0], {}, fixed[1])
        for pattern, template, methods in self._patterned:
            found = pattern.match(path)
            if found is not None:
                params = {k: v for k, v in found.groupdict().items() if not k.startswith("_")}
                prefix = "/v1" if "_v1" in found.groupdict() and found.group("_v1") else ""
                return Match(methods, params, prefix + template)
        return None

    def template(self, path: str) -> str | None:
        """The route template of ``path``, with ``/{project_id}`` when the caller named a project in it."""
        head = ""
        project = PROJECT_PREFIX.match(path)
        if project is not None and project.group(1) != "v1":
            head, path = "/{project_id}", project.group(2)
        found = self.match(path)
        if found is None:
            return None
        if head and not found.template.startswith("/v1"):
            return None
        return head + found.template


def stack_routes(app: Any) -> list[Route]:
    """Every route the layers of an ASGI stack declare, outermost layer first.

    Each middleware keeps the app it wraps as ``app``; a layer that answers paths of its own exposes
    them as ``routes`` (a :class:`RouteTable` or a sequence of :class:`Route`).
    """
    found: list[Route] = []
    seen: set[int] = set()
    layer = app
    while layer is not None and id(layer) not in seen:
        seen.add(id(layer))
        routes = getattr(layer, "routes", None)
        if isinstance(routes, RouteTable | Sequence):
            found.extend(route for route in routes if isinstance(route, Route) and route not in found)
        layer = getattr(layer, "app", None)
    return found
