"""Rate-limit and budget counters behind one interface: in process, or in Redis for several gateways.

``counters:`` in the config chooses: absent, the counters live in the gateway process; ``redis://host:6379/0``
(or ``rediss://``) puts them in Redis, shared by every gateway that names it. ``?prefix=name`` in the URL sets
the prefix of the keys (default ``relaygate``), so that several deployments can share one server.

:class:`RedisCounters` (and with it the Redis client) is imported when first used: most gateways count in process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from relaygate.counters.base import Adjustment, Charge, Counters, Reserved
from relaygate.counters.memory import InProcessCounters

if TYPE_CHECKING:
    from relaygate.counters.redis import RedisCounters

__all__ = [
    "DEFAULT_PREFIX",
    "Adjustment",
    "Charge",
    "Counters",
    "InProcessCounters",
    "RedisCounters",
    "Reserved",
    "open_counters",
    "split_counters_url",
]

DEFAULT_PREFIX = "relaygate"
REDIS_SCHEMES = ("redis", "rediss")


def open_counters(url: str | None) -> tuple[Counters, str]:
    """The counters a ``counters:`` URL names, and the prefix their keys take."""
    if url is None:
        return InProcessCounters(), DEFAULT_PREFIX
    if urlsplit(url).scheme not in REDIS_SCHEMES:
        raise ValueError("counters must be redis://host:6379/0 or rediss://... (absent: in-process)")
    from relaygate.counters.redis import RedisCounters

    server, prefix = split_counters_url(url)
    return RedisCounters(server), prefix


def __getattr__(name: str) -> Any:
    if name == "RedisCounters":
        from relaygate.counters.redis import RedisCounters

        return RedisCounters
    raise AttributeError(f"module 'relaygate.counters' has no attribute {name!r}")


def split_counters_url(url: str) -> tuple[str, str]:
    """A ``counters:`` URL as the server's URL and the key prefix: ``?prefix=`` is ours, not a connection
    argument for the Redis client."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for key, value in query if key == "prefix"), "") or DEFAULT_PREFIX
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix
