"""Custom guard callables named in the tests' configs (``tests.guards.callables:...``)."""

from __future__ import annotations

import anyio

from relaygate.guards import GuardInput, Verdict


def no_bananas(subject: GuardInput) -> bool | str:
    return "banana" not in subject.text.lower() or "mentions bananas"


async def polite(subject: GuardInput) -> Verdict:
    await anyio.sleep(0)
    if "please" in subject.text.lower():
        return Verdict(True)
    return Verdict(False, f"no '{subject.parameters['word']}' in {subject.stage}")


def broken(subject: GuardInput) -> bool:
    raise RuntimeError("the custom check blew up")


def confused(subject: GuardInput) -> int:
    return 42
