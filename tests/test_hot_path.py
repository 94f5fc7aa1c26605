"""What the request path was made lighter with: the collector tuned after start-up, cheap unique ids, limits
settled in one step."""

from __future__ import annotations

import gc
import multiprocessing
import uuid
from collections.abc import Iterator

import pytest

from relaygate import gctune
from relaygate.counters import Adjustment, Charge, InProcessCounters
from relaygate.ids import new_hex, new_uuid
from relaygate.settings import ServerSettings


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_serve_freezes_start_up_and_raises_the_thresholds(collector: None) -> None:
    thresholds = ServerSettings().gc_thresholds
    assert thresholds is not None and thresholds[0] > 700
    gctune.tune(thresholds)
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() > 0


def test_null_thresholds_leave_the_collector_alone(collector: None) -> None:
    before = gc.get_threshold()
    gctune.tune(ServerSettings(gc_thresholds=None).gc_thresholds)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def _ids(count: int) -> list[str]:
    return [str(new_uuid()) for _ in range(count)]


def test_ids_are_version_4_uuids_unique_within_and_across_processes() -> None:
    ours = [new_uuid() for _ in range(10_000)]
    assert all(value.version == 4 and value.variant == uuid.RFC_4122 for value in ours)
    assert uuid.UUID(str(ours[0])) == ours[0] and len(new_hex()) == 32
    with multiprocessing.get_context("fork").Pool(2) as pool:
        theirs = [uuid.UUID(text) for part in pool.map(_ids, [10_000, 10_000]) for text in part]
    assert len(set(ours) | set(theirs)) == 30_000


@pytest.mark.anyio
async def test_in_process_counters_settle_in_one_synchronous_step() -> None:
    counters = InProcessCounters()
    assert counters.synchronous
    await counters.reserve([Charge("k", 10, 100)], now=0.0)
    counters.adjust_now([Adjustment("k", -4)], now=0.0)
    assert await counters.level("k", 0.0, now=0.0) == 6
