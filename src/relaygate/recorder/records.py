"""A call's ledger records as plain tuples, and back: what crosses from the serving process to the recorder.

:class:`~relaygate.store.CallRecord` and :class:`~relaygate.store.MessageRecord` are slotted dataclasses,
which pickle through Python-level ``__getstate__``/``__setstate__`` (about 18 µs a call with two messages to
pickle, more to unpickle). Packed as a tuple of their fields in declaration order, ids as integers, they
pickle as plain values in C. The recorder sets the fields back as the records' ``__init__`` does, without
running their checks again (times in UTC, finite costs): they held when the serving process made them.

A packed call: ``(call fields..., (message fields...), ...)``, the messages' tuples after the call's fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

from relaygate.store import CallRecord, MessageRecord

__all__ = ["CallTuple", "pack_call", "unpack_call"]

CallTuple = tuple[Any, ...]
_R = TypeVar("_R", CallRecord, MessageRecord)

_CALL_FIELDS = tuple(f.name for f in fields(CallRecord))
_MESSAGE_FIELDS = tuple(f.name for f in fields(MessageRecord))
_call_values = attrgetter(*_CALL_FIELDS)
_message_values = attrgetter(*_MESSAGE_FIELDS)
_CALL_ID = _CALL_FIELDS.index("id")
_MESSAGE_ID = _MESSAGE_FIELDS.index("id")
_MESSAGE_CALL_ID = _MESSAGE_FIELDS.index("call_id")
_CALL_COUNT = len(_CALL_FIELDS)
# The records' slots (member descriptors), to set a rebuilt record's fields.
_CALL_SLOTS = tuple(CallRecord.__dict__[name] for name in _CALL_FIELDS)
_MESSAGE_SLOTS = tuple(MessageRecord.__dict__[name] for name in _MESSAGE_FIELDS)


def pack_call(call: CallRecord, messages: Sequence[MessageRecord] = ()) -> CallTuple:
    values: list[Any] = list(_call_values(call))
    values[_CALL_ID] = call.id.int
    for message in messages:
        packed: list[Any] = list(_message_values(message))
        packed[_MESSAGE_ID] = message.id.int
        if message.call_id is not None:
            packed[_MESSAGE_CALL_ID] = message.call_id.int
        values.append(tuple(packed))
    return tuple(values)


def unpack_call(packed: CallTuple) -> tuple[CallRecord, tuple[MessageRecord, ...]]:
    """The call and its messages :func:`pack_call` packed."""
    call = _rebuilt(CallRecord, _CALL_SLOTS, packed[:_CALL_COUNT])
    _CALL_SLOTS[_CALL_ID].__set__(call, _uuid(packed[_CALL_ID]))
    messages = []
    for values in packed[_CALL_COUNT:]:
        message = _rebuilt(MessageRecord, _MESSAGE_SLOTS, values)
        _MESSAGE_SLOTS[_MESSAGE_ID].__set__(message, _uuid(values[_MESSAGE_ID]))
        if values[_MESSAGE_CALL_ID] is not None:
            _MESSAGE_SLOTS[_MESSAGE_CALL_ID].__set__(message, _uuid(values[_MESSAGE_CALL_ID]))
        messages.append(message)
    return call, tuple(messages)


def _rebuilt(cls: type[_R], slots: tuple[Any, ...], values: Sequence[Any]) -> _R:
    """A record with these field values, as its constructor made it (and checked it) in the serving process:
    each value set through its slot's descriptor, as the frozen dataclass's ``__init__`` sets it."""
    made = object.__new__(cls)
    for slot, value in zip(slots, values, strict=True):
        slot.__set__(made, value)
    return made


def _uuid(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` without its checks (the value was a UUID's a moment ago), as
    :func:`~relaygate.ids.new_uuid` makes one."""
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made
