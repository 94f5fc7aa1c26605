"""Budgets' spend read from the roll-ups, on both backends: equal to the cost of the scope's calls in any window,
with and without the calls paid with the caller's own provider key, whether those calls were written after the
roll-ups of own-key calls existed or before (rolled up by the migration that adds them)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from relaygate.limits.periods import period_of
from relaygate.store import CallRecord, SpendKind, SpendScope, Store
from relaygate.store._rollup_sql import OWN_KEY_DIMS
from relaygate.store._sql import CALL_COLUMNS, SQLStore
from relaygate.store._sql_spend import rolled_up
from relaygate.store.migrations import OWN_KEY_MIGRATION, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from tests.store.conftest import T0, StoreFactory
from tests.store.test_rollups import WINDOWS
from tests.store.test_store import CALLS

pytestmark = pytest.mark.anyio

# Every third call paid with the caller's own key.
OWN = [dataclasses.replace(c, caller_key=f"ck-{i % 2}") if i % 3 == 0 else c for i, c in enumerate(CALLS)]
OWN_STEP = next(m.version for m in SQLITE_MIGRATIONS if m.description == OWN_KEY_MIGRATION) - 1
SCOPES = [
    SpendScope(SpendKind.PROJECT, "proj-a"),
    SpendScope(SpendKind.PROJECT, "proj-b", project_id="proj-b"),
    SpendScope(SpendKind.KEY, "key-1", project_id="proj-a"),
    SpendScope(SpendKind.USER, "u1", project_id="proj-a"),
    SpendScope(SpendKind.USER, "u2", project_id="proj-b"),
    SpendScope(SpendKind.MODEL, "gpt-4o", project_id="proj-a", provider="openai"),
    SpendScope(SpendKind.MODEL, "claude-sonnet-4", project_id="proj-b", provider="anthropic"),
    # Not held apart by the roll-ups: summed from the calls.
    SpendScope(SpendKind.KEY, "key-0"),
    SpendScope(SpendKind.MODEL, "gpt-4o", project_id="proj-a"),
    SpendScope(SpendKind.PROJECT, "proj-a", project_id="proj-b"),
]
# The windows of the dashboard's tests, and a budget's day, month and all time around the data.
PERIODS = [
    (p.start, p.end)
    for name in ("usd_per_day", "usd_per_month", "usd_total")
    for p in [period_of(name, (T0 + timedelta(days=2)).timestamp())]
]


def matches(scope: SpendScope, call: CallRecord) -> bool:
    value = {
        SpendKind.PROJECT: call.project_id,
        SpendKind.KEY: call.key_id,
        SpendKind.USER: call.user_id,
        SpendKind.MODEL: call.model,
    }[SpendKind(scope.kind)]
    return (
        value == scope.id
        and scope.project_id in (None, call.project_id)
        and scope.provider in (None, call.provider)
        and (scope.caller_keys or call.caller_key is None)
    )


def spent(calls: Sequence[CallRecord], scope: SpendScope, start: datetime, end: datetime) -> int:
    return sum(c.cost_nanos or 0 for c in calls if matches(scope, c) and start <= c.started_at < end)


async def assert_spend(store: Store) -> None:
    for scope in SCOPES:
        for caller_keys in (True, False):
            narrowed = dataclasses.replace(scope, caller_keys=caller_keys)
            for start, end in [*WINDOWS, *PERIODS]:
                assert await store.spend(narrowed, start, end) == spent(OWN, narrowed, start, end), (narrowed, start)


async def own_rollups(store: Store) -> dict[tuple[str, str, str], int]:
    """The cost in the day roll-ups of own-key calls, by (project, dimension, value)."""
    assert isinstance(store, SQLStore)
    rows = await store._fetch(
        "SELECT project_id, dim, value, SUM(cost_nanos) FROM call_rollups WHERE span = 'day' AND dim IN "
        f"({', '.join('?' for _ in OWN_KEY_DIMS)}) GROUP BY project_id, dim, value",
        list(OWN_KEY_DIMS.values()),
    )
    return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


def expected_own_rollups() -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for c in OWN:
        if c.caller_key is None:
            continue
        for dim, value in (
            ("own_all", ""),
            ("own_key", f"={c.key_id}"),
            ("own_user", "" if c.user_id is None else f"={c.user_id}"),
            ("own_model", f"={c.provider}/{c.model}"),
        ):
            key = (c.project_id, dim, value)
            out[key] = out.get(key, 0) + (c.cost_nanos or 0)
    return out


async def test_spend_equals_the_cost_of_the_scopes_calls_with_or_without_own_keys(store: Store) -> None:
    await store.write(OWN[:20])
    await store.write(OWN[20:])
    await store.write(OWN[:5])  # a retried batch counts once, in the own-key roll-ups too
    assert await own_rollups(store) == expected_own_rollups()
    await assert_spend(store)


def test_the_scopes_the_rollups_hold_apart() -> None:
    assert rolled_up(SpendScope(SpendKind.PROJECT, "p")) == ("p", "all", "")
    assert rolled_up(SpendScope(SpendKind.USER, "u", project_id="p")) == ("p", "user", "=u")
    assert rolled_up(SpendScope(SpendKind.MODEL, "m", project_id="p", provider="o")) == ("p", "model", "=o/m")
    assert rolled_up(SpendScope(SpendKind.KEY, "k")) is None
    assert rolled_up(SpendScope(SpendKind.MODEL, "m", project_id="p")) is None
    assert rolled_up(SpendScope(SpendKind.PROJECT, "p", project_id="q")) is None


async def test_own_key_calls_stored_before_their_rollups_are_rolled_up_by_the_migration(
    store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as before:
        before.setattr("relaygate.store.sqlite.SQLITE_MIGRATIONS", SQLITE_MIGRATIONS[:OWN_STEP])
        before.setattr("relaygate.store.postgres.POSTGRES_MIGRATIONS", POSTGRES_MIGRATIONS[:OWN_STEP])
        async with store_factory() as old:
            assert await old.schema_version() == OWN_STEP and isinstance(old, SQLStore)
            # Inserted bare: whatever version wrote them, the upgrade finds them in the calls.
            rows = [old._call_row(c) for c in OWN]
            marks = ", ".join("?" for _ in rows[0])
            await old._transaction([(f"INSERT INTO calls ({CALL_COLUMNS}) VALUES ({marks})", rows)])
            assert await own_rollups(old) == {}
    async with store_factory() as upgraded:
        assert await own_rollups(upgraded) == expected_own_rollups()
        # Calls written after the upgrade add to the same roll-ups.
        later = dataclasses.replace(OWN[0], id=uuid.uuid4(), trace_id="later")
        await upgraded.write([later])
        key = (later.project_id, "own_all", "")
        assert (await own_rollups(upgraded))[key] == expected_own_rollups()[key] + (later.cost_nanos or 0)
