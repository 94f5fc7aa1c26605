"""The dashboard at ``/ui``: its sessions, how often its pages refresh, and where a call's trace opens.

```yaml
ui:
  enabled: true
  session_ttl: 28800                      # seconds a sign-in lasts (8 hours)
  refresh_seconds: 30                     # how often open pages fetch fresh figures (0: never)
  trace_url: "http://jaeger:16686/trace/{trace_id}"    # or Grafana/Tempo's explore URL with {trace_id}
  session_secret: "${RELAYGATE_UI_SECRET}"             # signs the session cookies (see below)
```

Sessions are signed cookies: every gateway process that serves one dashboard must sign with the same
secret. Left out, a random one is made at start (``relaygate serve --workers N`` makes one for all its
workers), so signing in again is needed after a restart.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from relaygate.settings.base import SettingsModel

__all__ = ["UiSettings"]

TRACE_ID_FIELD = "{trace_id}"


class UiSettings(SettingsModel):
    """The dashboard's settings (``ui:`` in the config file)."""

    # Whether the gateway serves the dashboard at /ui.
    enabled: bool = True
    # Seconds a sign-in lasts (8 hours).
    session_ttl: int = Field(8 * 3600, ge=60, le=30 * 86400)
    # How often open pages fetch fresh figures, in seconds (0: never).
    refresh_seconds: int = Field(30, ge=0, le=3600)
    # A URL with {trace_id} where it goes: the call's page links to it.
    trace_url: str | None = None
    # At least 32 characters; with RELAYGATE_UI_SESSION_SECRET set, that is used when this is left out.
    session_secret: SecretStr | None = Field(None, min_length=32)

    @field_validator("trace_url")
    @classmethod
    def _trace_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if TRACE_ID_FIELD not in url:
            raise ValueError(f"trace_url must hold {TRACE_ID_FIELD} where the call's trace id goes")
        try:
            parts = urlsplit(url.replace(TRACE_ID_FIELD, "0"))
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "trace_url must be an http:// or https:// URL such as http://jaeger:16686/trace/{trace_id}"
            )
        return url

    def trace_link(self, trace_id: str) -> str | None:
        """The URL of a trace, or ``None`` without ``trace_url`` (or for an id that is not hex)."""
        if self.trace_url is None or not trace_id or any(c not in "0123456789abcdefABCDEF" for c in trace_id):
            return None
        return self.trace_url.replace(TRACE_ID_FIELD, trace_id)
