"""``relaygate serve`` lowers the interpreter's switch interval once started (``server.switch_interval``)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from relaygate import gctune
from relaygate.settings import ServerSettings


@pytest.fixture
def interpreter() -> Iterator[None]:
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    yield
    sys.setswitchinterval(interval)
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_serve_lowers_the_switch_interval(interpreter: None) -> None:
    settings = ServerSettings()
    assert settings.switch_interval is not None and settings.switch_interval < sys.getswitchinterval()
    gctune.tune(settings.gc_thresholds, settings.switch_interval)
    assert sys.getswitchinterval() == pytest.approx(settings.switch_interval)


def test_null_leaves_pythons_switch_interval(interpreter: None) -> None:
    before = sys.getswitchinterval()
    gctune.tune(None, ServerSettings(switch_interval=None).switch_interval)
    assert sys.getswitchinterval() == before


def test_the_switch_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ServerSettings(switch_interval=0)
