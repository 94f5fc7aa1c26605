"""API keys: only their SHA-256 digests are kept, and keys are looked up by digest."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["ApiKey", "KeyRing", "hash_key", "key_digest", "key_id", "new_key"]

_DIGEST_SPEC = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
KEY_PREFIX = "rg-"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A known key: a stable id that can be logged (never the key) and the projects it may use."""

    id: str
    digest: bytes
    projects: frozenset[str]


def hash_key(key: str) -> str:
    """The ``sha256:<hex>`` line to put in a config file instead of the key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def key_digest(spec: str) -> bytes:
    """Digest of a key given either as the key itself or as ``sha256:<hex>``."""
    match = _DIGEST_SPEC.match(spec)
    if match:
        return bytes.fromhex(match.group(1))
    return hashlib.sha256(spec.encode()).digest()


def key_id(digest: bytes) -> str:
    """The id a key is known by in logs, traces, the ledger and ``limits.keys``; never the key itself."""
    return "key_" + digest.hex()[:12]


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """Digest -> key. Empty means no keys are configured."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._by_digest = {key.digest: key for key in keys}

    @classmethod
    def from_projects(cls, projects: Mapping[str, Iterable[str]]) -> KeyRing:
        """Build from ``{project_id: [key or sha256:<hex>, ...]}``; a key may serve several projects."""
        owners: dict[bytes, set[str]] = {}
        for project_id, specs in projects.items():
            for spec in specs:
                owners.setdefault(key_digest(spec), set()).add(project_id)
        return cls(ApiKey(id=key_id(digest), digest=digest, projects=frozenset(p)) for digest, p in owners.items())

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def by_id(self, key_id: str) -> ApiKey | None:
        """The key known by ``key_id`` (what logs and the dashboard's sessions name it by)."""
        return next((key for key in self._by_digest.values() if key.id == key_id), None)

    def lookup(self, presented: str) -> ApiKey | None:
        digest = hashlib.sha256(presented.encode()).digest()
        # The dict lookup compares digests, which tells an attacker nothing about keys; the final
        # comparison is constant-time all the same.
        key = self._by_digest.get(digest)
        if key is not None and hmac.compare_digest(key.digest, digest):
            return key
        return None
