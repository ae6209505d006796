"""What one op does, written once: one template for the call (and the retry) of every op kind.

A worker whose op is not one of the loop's inline classics calls `op.call(w)` (`op.acall(w)` on asyncio)
once per op: choose the key (or make the PUT's key and payload), keep them on the worker so a retry repeats
exactly the same call, run the storage action, return the bytes moved. `op.redo(w)` is that retry: the same
action on the worker's kept key and payload. Both are generated from `_TEMPLATE` per `CallShape`
(engine.codegen), so each op kind's call has only its own lines, as fast as a hand-written closure, and the
PUT key and payload code, the pool pick and the result exist once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sbench.engine.codegen import compile_source, select, substitute

#: how the key is found: from a pool that may run dry (`choose(rng)`, None when empty), by index into an
#: unchanging pool (`key_of(int(rnd() * count))`), from the worker's PUT sequence, or none (LIST a prefix)
KEYS = ("pool", "index", "seq", "none")
#: what the op does with it: read (the result is the bytes read), void (STAT, DELETE, MKDIR, RMDIR), put, list
ACTIONS = ("read", "void", "put", "list")
#: a PUT's payload: one size for every op, or a size drawn per op
PAYLOADS = ("", "fixed", "sampled")


class PoolExhausted(Exception):
    """An op found its key pool empty (a DELETE removed every key it could): the op stops, said once."""


@dataclass(frozen=True, slots=True)
class CallShape:
    """Which lines an op's call has (see the module docstring)."""

    key: str
    action: str
    payload: str = ""
    #: a PUT that adds its key to the GET/STAT pools of `dynamic_put_pool`
    feeds: bool = False
    asynchronous: bool = False

    def __post_init__(self) -> None:
        if self.key not in KEYS or self.action not in ACTIONS or self.payload not in PAYLOADS:
            raise ValueError(f"no such op call: {self}")
        if (self.action == "put") != bool(self.payload) or (self.feeds and self.action != "put"):
            raise ValueError(f"a payload and fed pools go with a PUT, and only with one: {self}")
        if (self.action == "list") != (self.key == "none"):
            raise ValueError(f"a LIST, and only a LIST, has no key: {self}")
        if (self.key == "seq" and self.action != "put") or (self.key == "index" and self.action == "put"):
            raise ValueError(f"new keys are for PUTs, keys by index for reads: {self}")

    @property
    def tags(self) -> frozenset[str]:
        optional = [("feeds", self.feeds), ("put", self.action == "put")]
        return frozenset(
            {self.key, self.action, "async" if self.asynchronous else "sync"}
            | ({self.payload} if self.payload else set())
            | {word for word, on in optional if on}
        )

    @property
    def name(self) -> str:
        parts = [self.action, self.key, self.payload, "feeds" if self.feeds else ""]
        return "-".join(["async" if self.asynchronous else "sync", *(p for p in parts if p)])


# The function `make(op, action, ...)` returns the op's (call, redo); the part between the two `NAME`
# functions is the same for both, the call's lines (@call) choose and keep the key and payload, the retry's
# (@redo) take the kept ones. `action` is the storage call (the async one for asyncio workers).
_HEAD = """
def make(
    op, action, choose=None, key_of=None, count=0, size=0, sample=None, payload=None, head="", dyn=(),
    prefix="",
):
"""

_TEMPLATE = """
    ASYNC def NAME(w):
        size = sample(w.rng)  @call @sampled
        key = choose(w.rng)  @call @pool
        if key is None:  @call @pool
            raise PoolExhausted(op.label)  @call @pool
        w.key = key  @call @pool
        key = w.key = key_of(int(w.rnd() * count))  @call @index
        seq = w.seq  @call @put
        w.seq = seq + 1  @call @put
        key = w.key = f"{head}{w.tag}{seq}.dat"  @call @seq
        data = w.data = payload((w.index << 40) | seq)  @call @fixed
        data = w.data = payload(size, (w.index << 40) | seq)  @call @sampled
        key = w.key  @redo @!none
        data = w.data  @redo @put
        size = len(data)  @redo @put
        return len(AWAIT action(key))  @read
        AWAIT action(key)  @void
        AWAIT action(key, data)  @put
        for pool in dyn:  @feeds
            pool.add(key)  @feeds
        for _ in action(prefix, recursive=True):  @list @sync
        async for _ in action(prefix, recursive=True):  @list @async
            pass  @list
        return size  @put
        return 0  @!read @!put
"""

#: the sync and async spellings of the templates' words (engine.loops uses them too)
WORDS = {
    False: {"ASYNC ": "", "AWAIT ": "", "CALL(": "call(", "REDO(": "redo(", "RETRY(": "retry_sync("},
    True: {
        "ASYNC ": "async ",
        "AWAIT ": "await ",
        "CALL(": "acall(",
        "REDO(": "aredo(",
        "RETRY(": "retry_async(",
    },
}


def call_source(shape: CallShape) -> str:
    """The source of `make` for `shape`: the call and the retry, then `return call, redo`."""
    words = WORDS[shape.asynchronous]
    bodies = [
        substitute("\n".join(select(_TEMPLATE, shape.tags | {step})), {**words, "NAME(": f"{step}("})
        for step in ("call", "redo")
    ]
    return _HEAD.lstrip("\n") + "\n".join(bodies) + "\n    return call, redo\n"


@cache
def _factory(shape: CallShape) -> Callable[..., tuple[Callable[..., Any], Callable[..., Any]]]:
    filename = f"<sbench op call {shape.name}>"
    return compile_source(call_source(shape), filename, "make", {"PoolExhausted": PoolExhausted})


def op_calls(
    shape: CallShape, op: Any, action: Callable[..., Any], **parts: Any
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The (call, redo) of `op` with `shape` (compiled once per shape and process), around `action`;
    `parts` are what the shape's lines use: choose, key_of and count, size, sample, payload, head, dyn,
    prefix."""
    return _factory(shape)(op, action, **parts)
