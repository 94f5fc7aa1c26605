"""Unique ids made cheaply: a per-process random prefix and a counter, shaped as version-4 UUIDs.

``uuid.uuid4()`` reads 16 bytes from the operating system's random source on every call (a system call,
a few microseconds). A call's id only has to be unique, across every process that writes to the same
ledger: 60 random bits chosen once per process (again in a forked child) and a 62-bit counter give that,
at the cost of an addition. The ids keep the UUID type and its version and variant bits, so the stores
and everything that parses them see no difference.
"""

from __future__ import annotations

import itertools
import os
import secrets
import uuid

__all__ = ["new_hex", "new_uuid"]

_VERSION = 4 << 76  # the version nibble (bits 76-79 counted from the least significant)
_VARIANT = 0b10 << 62  # RFC 4122's variant, in the top bits of the low 64
_COUNTER_MASK = (1 << 62) - 1
_PREFIX_MASK = ((1 << 64) - 1) << 64 & ~(0xF << 76)

_state: tuple[int, itertools.count[int]] | None = None
_hooked = False


def _reseed() -> tuple[int, itertools.count[int]]:
    global _state, _hooked
    if not _hooked:
        # Registered on first use, not at import: a forked child draws its own prefix.
        os.register_at_fork(after_in_child=_forked)
        _hooked = True
    prefix = (secrets.randbits(64) << 64) & _PREFIX_MASK
    _state = (prefix | _VERSION | _VARIANT, itertools.count(secrets.randbits(32)))
    return _state


def _forked() -> None:
    global _state
    _state = None


def new_uuid() -> uuid.UUID:
    """A fresh id, unique across processes (see the module docstring)."""
    state = _state or _reseed()
    value = state[0] | (next(state[1]) & _COUNTER_MASK)
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def new_hex() -> str:
    """A fresh id as 32 hexadecimal digits (``uuid4().hex``'s shape)."""
    return new_uuid().hex
