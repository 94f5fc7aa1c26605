"""The garbage collector of a process ``relaygate serve`` owns, tuned once the gateway has started.

CPython's cyclic collector runs a generation-0 pass every 700 net allocations of container objects,
a generation-1 pass every 10 of those and a full pass every 10 of those. A request through every layer
allocates some hundreds of them, almost all freed at once by reference counting, so the defaults run a
pass every few requests and, every few dozen, a generation-1 pass that stalls the event loop for
milliseconds; full passes walk every object start-up made (modules, settings, price tables), every time.

After start-up, :func:`tune` freezes what exists (``gc.freeze()``: the permanent generation, never
scanned again) and raises the thresholds. Cycles are still collected, less often.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["tune"]

logger = logging.getLogger("relaygate")


def tune(thresholds: tuple[int, int, int] | None) -> None:
    """Freeze start-up's objects and set the collector's ``thresholds``; ``None`` leaves it alone."""
    if thresholds is None:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    logger.debug("gc: %d objects frozen, thresholds %s", gc.get_freeze_count(), thresholds)
