"""The small workloads the fault scenarios run: seconds long, tens to thousands of small objects."""

from __future__ import annotations

GET_AND_PUT = '  - {op: get, path: "", weight: 60}\n  - {op: put, path: "up/", size_spec: 2KiB, weight: 40}'
GET_ONLY = '  - {op: get, path: "", weight: 1}'
PUT_ONLY = '  - {op: put, path: "up/", size_spec: 64KiB, weight: 1}'
#: Few, short retries: a cleanup against a store that refuses every delete then ends in seconds.
SHORT_RETRIES = "error_handling: {max_retries: 2, max_retry_delay_ms: 200}\n"
#: Two local Ray agents (one process each) sharing the target, the default all_or_nothing barriers.
TWO_AGENTS = """distributed:
  shared_filesystem: true
  agents:
    - {address: 'localhost:7761', id: a1}
    - {address: 'localhost:7762', id: a2}
"""


def workload(
    target: str,
    *,
    duration: str = "3s",
    objects: int = 40,
    ops: str = GET_AND_PUT,
    concurrency: int = 4,
    cleanup_mode: str = "tolerant",
    extra: str = "",
) -> str:
    """A config: prepare `objects` objects of 2 KiB (none when 0), run `ops` for `duration`, clean up."""
    prepare = (
        f"prepare:\n  ensure_objects:\n    - {{count: {objects}, size_spec: 2KiB, fill: random}}\n"
        f"  cleanup: true\n  cleanup_mode: {cleanup_mode}\n"
        if objects
        else ""
    )
    return (
        f'target: "{target}"\nduration: {duration}\nconcurrency: {concurrency}\n{prepare}'
        f"workload:\n{ops}\n{extra}"
    )
