"""Who is looking at a dashboard page, which projects they may see, and the request they made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

from relaygate.errors import NotFoundError
from relaygate.ui.sessions import Session

__all__ = ["UiRequest", "Viewer"]


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in session: the admin key (or an open gateway) sees every project; a project key its own."""

    session: Session
    projects: tuple[str, ...]
    csrf: str

    @property
    def admin(self) -> bool:
        return self.session.admin

    @property
    def open(self) -> bool:
        return self.session.subject == "open"

    @property
    def who(self) -> str:
        if self.open:
            return "open gateway"
        if self.admin:
            return "admin"
        return f"key {self.session.subject}"


@dataclass(slots=True)
class UiRequest:
    """One dashboard request: its query, the base of every link, and (once signed in) its viewer."""

    scope: Scope
    method: str
    path: str  # below /ui: "/", "/calls", ...
    base: str  # root_path + "/ui": prefix every link with it
    query: dict[str, str]
    htmx: bool
    secure: bool
    viewer: Viewer | None = None
    form: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def signed_in(self) -> Viewer:
        assert self.viewer is not None, "a page behind the sign-in ran without a viewer"
        return self.viewer

    def projects(self) -> tuple[str, ...]:
        """The projects the page shows: the one chosen with ``?project=``, or all the viewer's."""
        viewer = self.signed_in
        chosen = self.query.get("project")
        if not chosen:
            return viewer.projects
        if chosen not in viewer.projects:
            raise NotFoundError(f"No project '{chosen}' here.", code="project_not_found")
        return (chosen,)

    def context(self, **values: Any) -> dict[str, Any]:
        """What every template gets, and the page's own values."""
        viewer = self.viewer
        common: Mapping[str, Any] = {
            "base": self.base,
            "static": f"{self.base}/static",
            "viewer": viewer,
            "csrf": viewer.csrf if viewer is not None else "",
            "query": self.query,
            "project": self.query.get("project", ""),
        }
        return {**common, **values}
