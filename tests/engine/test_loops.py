"""The worker loop is one template: every shape a worker can have compiles from it, each shape has exactly
the steps it needs, and a traceback from inside a generated loop shows its real lines."""

from __future__ import annotations

import itertools
import traceback
from types import SimpleNamespace

import pytest

from sbench.engine.loops import PICKS, LoopShape, loop_for, loop_source

SHAPES = [
    LoopShape(asynchronous, pick, open_loop, limited, counted)
    for asynchronous, pick, open_loop, limited, counted in itertools.product(
        (False, True), PICKS, (False, True), (False, True), (False, True)
    )
    if not (asynchronous and pick != "mixed")
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_every_shape_compiles_with_exactly_its_steps(shape: LoopShape) -> None:
    source = loop_source(shape)
    loop = loop_for(shape)
    assert loop is loop_for(shape)  # compiled once per shape
    assert "@" not in source and "AWAIT" not in source and ".CALL(" not in source and "RETRY" not in source
    assert ("schedule.claim()" in source) == shape.open_loop
    assert ("append((t1 - t0)" in source) == (not shape.open_loop)
    assert ("sem.release()" in source) == shape.limited
    assert ("expected_tasks=" in source) == shape.counted
    assert ("await " in source) == shape.asynchronous
    assert ("op.acall(w)" in source) == shape.asynchronous
    assert ("retry_async(run, op, w, exc)" in source) == shape.asynchronous
    assert ("op.call(w)" in source) == (shape.pick == "mixed" and not shape.asynchronous)
    assert ("put(key, data)" in source) == (shape.pick == "fixed_put")
    assert ("key_of(int(rnd() * count))" in source) == (shape.pick == "static_get")
    # the sequence number goes back to the worker on every way out, only where it is kept in a local
    assert ("finally:\n        w.seq = seq" in source) == (shape.pick == "fixed_put")


def test_asyncio_workers_only_call_through_acall() -> None:
    with pytest.raises(ValueError, match="acall"):
        LoopShape(asynchronous=True, pick="fixed_put")
    with pytest.raises(ValueError, match="pick"):
        LoopShape(pick="sideways")


def test_a_traceback_from_a_generated_loop_shows_its_line() -> None:
    shape = LoopShape(pick="mixed")
    worker = SimpleNamespace(ops=[], cum=[], total=0.0, rng=SimpleNamespace(random=lambda: 0.0))
    worker.recorder = SimpleNamespace(sink=lambda: ([], [0]))
    broken_run = SimpleNamespace(control=object(), deadline_ns=0, policy=None)  # a control without `halted`
    with pytest.raises(AttributeError) as info:
        loop_for(shape)(broken_run, worker)
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert frame.filename == f"<sbench worker loop {shape.name}>"
    assert frame.name == "worker_loop_sync_mixed_closed"
    assert frame.line == "while not control.halted:"
