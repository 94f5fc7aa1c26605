"""Secrets never leave the gateway: what relaygate knows to be secret, and scrubbing it out of text.

Providers' error texts are relayed to callers, and many OpenAI-compatible servers and proxies echo the
``Authorization`` header or the key in them. Whatever the gateway relays of a provider's errors (a 4xx
``message`` and ``param``, a non-JSON 5xx body, the ``provider_auth_error``, a mid-stream ``error``
event), records on its spans or writes to its log goes through :meth:`Secrets.scrub` first, which
replaces with :data:`REDACTED`:

- every **known secret**: the providers' ``api_key`` and the values of their ``headers`` (see
  :func:`configured_secrets`), the admin key, the projects' keys, the OTLP exporter's headers, the
  passwords in the database and counters URLs, and the secrets a request adds for itself
  (:meth:`relaygate.context.RequestContext.add_secret`: a caller's own provider key);
- strings **shaped like credentials** whoever they belong to (:data:`SHAPES`): ``Bearer <token>``
  (the word ``Bearer`` is kept), OpenAI and Anthropic keys (``sk-...``, ``sk-proj-...``,
  ``sk-ant-...``), Google API keys (``AIza...``), relaygate's own keys (``rg-...``) and JSON web tokens.

The rest of the text is kept as it was. Known secrets shorter than :data:`MIN_SECRET_LENGTH` characters
are no credential worth the name (vLLM's ``EMPTY``, Ollama's ``ollama``) and are left alone, so that
ordinary words in messages survive.

Everything here runs on error paths only: the matcher (one compiled alternation of the known secrets,
longest first, and the shapes) is built the first time something is scrubbed, and nothing is scrubbed
while calls succeed. :class:`LogScrubber` is the ``logging.Filter`` the :class:`~relaygate.Gateway`
installs on relaygate's loggers (never at import); a request's own secrets reach it through
:data:`REQUEST_SECRETS`, which the gateway points at the request's context for as long as it is served.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from relaygate.errors import GatewayError
    from relaygate.settings import Settings

__all__ = [
    "MIN_SECRET_LENGTH",
    "NO_SECRETS",
    "REDACTED",
    "REQUEST_SECRETS",
    "SHAPES",
    "LogScrubber",
    "Secrets",
    "configured_secrets",
    "install_log_filter",
    "log_filter",
]

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 8

# Credentials by their look. A bearer token keeps its "Bearer " (the group), so the message still says
# what was sent; the others go whole. Keys are matched only where they start a word: "task-..." is no key.
# A token is 16 characters or more: "Bearer authentication" is prose, not a credential.
SHAPES = (
    r"(?P<scheme>\b(?:[Bb]earer|BEARER|[Bb]asic|BASIC)\s+)[A-Za-z0-9\-._~+/]{16,}=*",
    r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{8,}",
    r"(?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{20,}",
    r"(?<![A-Za-z0-9_\-])rg-[A-Za-z0-9_\-]{24,}",
    r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
)

# Provider headers whose values are protocol details, not credentials: versions and feature flags.
NOT_SECRET_HEADERS = frozenset(
    {"accept", "anthropic-beta", "anthropic-version", "content-type", "openai-beta", "user-agent"}
)


class Secrets:
    """A set of known secrets and the credential shapes; :meth:`scrub` takes them out of text.

    Immutable: :meth:`extended` gives a new one with more secrets (a request's own), sharing nothing
    mutable with this one, so the gateway's may serve every request at once.
    """

    __slots__ = ("_lock", "_pattern", "known")

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.known = frozenset(secret for secret in known if len(secret) >= MIN_SECRET_LENGTH)
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def extended(self, more: Iterable[str]) -> Secrets:
        """These secrets and ``more``; ``self`` when ``more`` adds nothing."""
        added = frozenset(secret for secret in more if len(secret) >= MIN_SECRET_LENGTH) - self.known
        return Secrets(self.known | added) if added else self

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and credential-shaped string replaced by :data:`REDACTED`."""
        if not text:
            return text
        return self._matcher().sub(_replacement, text)

    def scrub_optional(self, text: str | None) -> str | None:
        return None if text is None else self.scrub(text)

    def scrub_error(self, error: GatewayError) -> GatewayError:
        """``error`` with its message, param, type, code and header values scrubbed (in place); returned."""
        error.message = self.scrub(error.message)
        error.args = (error.message,)
        error.param = self.scrub_optional(error.param)
        error.type = self.scrub(error.type)
        if error.code is not None:
            error.code = self.scrub(error.code)
        if error.headers:
            error.headers = [(name, self._scrub_bytes(value)) for name, value in error.headers]
        return error

    def _scrub_bytes(self, value: bytes) -> bytes:
        text = value.decode("latin-1")
        scrubbed = self.scrub(text)
        return value if scrubbed == text else scrubbed.encode("latin-1", errors="replace")

    def _matcher(self) -> re.Pattern[str]:
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                if self._pattern is None:
                    # Longest first: a secret that holds another is replaced whole.
                    known = sorted(self.known, key=len, reverse=True)
                    self._pattern = re.compile("|".join([*(re.escape(secret) for secret in known), *SHAPES]))
                pattern = self._pattern
        return pattern


# The credential shapes alone: what a context scrubs when no gateway told it of any secret.
NO_SECRETS = Secrets()


def _replacement(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    return scheme + REDACTED if scheme else REDACTED


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret a configuration holds (see the module docstring)."""
    found: list[str] = []
    for provider in settings.providers.values():
        if provider.api_key is not None:
            found.append(provider.api_key.get_secret_value())
        for name, value in provider.headers.items():
            if name.lower() not in NOT_SECRET_HEADERS:
                found += _header_secrets(value)
        found += _url_secrets(provider.base_url)
    if settings.admin_key is not None:
        found.append(settings.admin_key.get_secret_value())
    for project in settings.projects:
        found += [key.get_secret_value() for key in project.keys if not key.get_secret_value().startswith("sha256:")]
    for secret in settings.telemetry.headers.values():
        found += _header_secrets(secret.get_secret_value())
    for server in settings.mcp_servers.values():
        for name, secret in server.headers.items():
            if name.lower() not in NOT_SECRET_HEADERS:
                found += _header_secrets(secret.get_secret_value())
        found += _url_secrets(server.url)
    found += _url_secrets(settings.database)
    found += _url_secrets(settings.counters)
    return found


def _header_secrets(value: str) -> list[str]:
    # "Bearer <token>" is echoed as the whole value or as the token alone.
    parts = value.split()
    return [value, parts[-1]] if len(parts) > 1 else [value]


def _url_secrets(url: str | None) -> list[str]:
    if not url:
        return []
    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


# --- logs ----------------------------------------------------------------------------------------------


class _HasSecrets(Protocol):
    secrets: Secrets


# The request being served in this task (its context): its own secrets (a caller's provider key) are
# scrubbed from the log lines written while it is served. Set by the Gateway around each request.
REQUEST_SECRETS: ContextVar[_HasSecrets | None] = ContextVar("relaygate_request_secrets", default=None)


class LogScrubber(logging.Filter):
    """Scrubs every record's message, exception text and stack of the secrets of every gateway of the
    process and of the request being served. One per process (:func:`log_filter`)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets = Secrets()

    def add(self, secrets: Secrets) -> None:
        self.secrets = self.secrets.extended(secrets.known)

    def filter(self, record: logging.LogRecord) -> bool:
        current = REQUEST_SECRETS.get()
        scrubbers = [self.secrets]
        if current is not None and current.secrets.known - self.secrets.known:
            scrubbers.append(current.secrets)
        message = record.getMessage()
        if _scrub_all(scrubbers, message) != message:
            _scrub_record(record, scrubbers, message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _scrub_all(scrubbers, record.exc_text)
        if record.stack_info:
            record.stack_info = _scrub_all(scrubbers, record.stack_info)
        return True


def _scrub_record(record: logging.LogRecord, scrubbers: list[Secrets], message: str) -> None:
    """Scrub a record's message and its arguments one by one, so that formatters reading ``args`` (uvicorn's
    access log does) still find them; when that does not get every secret out, the message is flattened."""

    def scrubbed(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        text = value if isinstance(value, str) else str(value)
        clean = _scrub_all(scrubbers, text)
        return value if clean == text else clean

    if isinstance(record.msg, str):
        record.msg = _scrub_all(scrubbers, record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(scrubbed(value) for value in record.args)
    elif isinstance(record.args, dict):
        record.args = {key: scrubbed(value) for key, value in record.args.items()}
    try:
        now = record.getMessage()
    except (TypeError, ValueError):
        now = None
    if now is None or _scrub_all(scrubbers, now) != now:
        record.msg, record.args = _scrub_all(scrubbers, message), None


def _scrub_all(scrubbers: list[Secrets], text: str) -> str:
    for secrets in scrubbers:
        text = secrets.scrub(text)
    return text


_FILTER: LogScrubber | None = None
_FILTER_LOCK = threading.Lock()


def log_filter() -> LogScrubber:
    """The process's one :class:`LogScrubber` (made on first use; a logging config may name this
    function as a filter factory: ``{"()": "relaygate.secrets.log_filter"}``)."""
    global _FILTER
    with _FILTER_LOCK:
        if _FILTER is None:
            _FILTER = LogScrubber()
        return _FILTER


def install_log_filter(secrets: Secrets, logger_names: Iterable[str] = ()) -> LogScrubber:
    """Add ``secrets`` to the process's log filter and put the filter on the ``relaygate`` logger and
    every ``relaygate.*`` logger (a logger's filter sees only its own records, not its children's), and on
    ``logger_names``. Installing again is harmless."""
    scrubber = log_filter()
    scrubber.add(secrets)
    manager: Any = logging.Logger.manager
    names = [name for name in list(manager.loggerDict) if name == "relaygate" or name.startswith("relaygate.")]
    for name in {"relaygate", *names, *logger_names}:
        logger = logging.getLogger(name)
        if scrubber not in logger.filters:
            logger.addFilter(scrubber)
    return scrubber
