"""The event loop that runs an agent's asyncio workers: asyncio's own, or uvloop's (libuv, in C).

Every async call of a native driver ends with its Rust runtime handing the result back to the event loop
from another thread (`call_soon_threadsafe`, a wake-up of the loop's selector), and the loop then resumes the
awaiting task: per op that is event-loop work, so a faster loop lowers the client CPU per op
(bench/native_path.py measures it against SeaweedFS). uvloop is optional (`pip install 'sbench[uvloop]'`);
the config refuses `event_loop: uvloop` when it is not installed, so here it is imported only when chosen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from sbench.config.models import EventLoop


def run_on(event_loop: EventLoop, main: Coroutine[Any, Any, Any]) -> Any:
    """Run `main` to completion on a new event loop of the chosen kind and return its result."""
    if event_loop is EventLoop.UVLOOP:
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
