"""The short GIL switch interval is in force exactly while worker threads run."""

from __future__ import annotations

import sys
import threading

import pytest

from sbench.engine.gil import WORKER_SWITCH_INTERVAL_S, worker_switch_interval


def test_first_worker_sets_and_last_worker_restores_the_interval() -> None:
    before = sys.getswitchinterval()
    inside = threading.Event()
    release = threading.Event()
    seen: list[float] = []

    def worker() -> None:
        with worker_switch_interval():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(5)
    with worker_switch_interval():  # a second worker while the first still runs
        seen.append(sys.getswitchinterval())
    seen.append(sys.getswitchinterval())  # the first worker still holds it
    release.set()
    t.join(5)
    assert seen == pytest.approx([WORKER_SWITCH_INTERVAL_S, WORKER_SWITCH_INTERVAL_S])
    assert sys.getswitchinterval() == before


def test_a_crashing_worker_still_restores_the_interval() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), worker_switch_interval():
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == before
