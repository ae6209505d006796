"""sai3-bench HEAD's `s3dlio_optimization` block: its range settings become `range_engine` keys; the rest
tunes s3dlio itself (its tokio runtime, its HTTP/2 and GCS gRPC clients), which sbench does not use, and is
refused with the reason, since silently dropping a tuning key would let a user believe it took effect.

The block is rewritten in the raw YAML data before validation, so the range settings then go through
`range_engine`'s own checks and defaults, and the dry-run shows them there.
"""

from __future__ import annotations

from typing import Any

from sbench.config.problems import KeyPath

BLOCK = "s3dlio_optimization"
MIB = 1024 * 1024

#: s3dlio key -> (range_engine key, factor from the s3dlio unit to sbench's).
RANGE_KEYS: dict[str, tuple[str, int]] = {
    "enable_range_downloads": ("enabled", 1),
    "range_threshold_mb": ("min_split_size", MIB),
    "range_concurrency": ("max_concurrent_ranges", 1),
    "chunk_size_mb": ("chunk_size", MIB),
}

_GRPC = "configures s3dlio's GCS gRPC client; sbench's GCS drivers use the JSON and XML APIs over HTTP"
_H2 = ("tunes s3dlio's HTTP/2 client; sbench's drivers keep a pool of HTTP/1.1 connections, one per "
       "request in flight (size it with backend_options.max_connections)")
_RUNTIME = ("sizes s3dlio's tokio runtime; obstore sizes its own, and sbench adds load with more agent "
            "processes (`processes`, distributed.agents_per_node)")
REFUSED: dict[str, str] = {
    "gcs_channel_count": _GRPC,
    "gcs_rapid_mode": _GRPC,
    "gcs_write_chunk_size_bytes": "use backend_options.multipart_part_size (upload part size, every cloud)",
    "gcs_project": ("object operations need no project; the GCS drivers take it from GOOGLE_CLOUD_PROJECT "
                    "or the credentials file"),
    "h2c": _H2,
    "h2_adaptive_window": _H2,
    "h2_stream_window_mb": _H2,
    "h2_conn_window_mb": _H2,
    "s3dlio_rt_threads": _RUNTIME,
    "tokio_worker_threads": _RUNTIME,
}
#: Accepted at these values only: what sbench does anyway.
ACCEPTED_AS: dict[str, Any] = {"auto_threads": True}


def translate_s3dlio(data: Any) -> list[tuple[KeyPath, str]]:
    """Remove `s3dlio_optimization` from `data` (in place), moving its range keys onto `range_engine`;
    (key path, message) for each key that has no equivalent or collides with `range_engine`."""
    if not isinstance(data, dict) or BLOCK not in data:
        return []
    block = data.pop(BLOCK)
    if block is None:
        return []
    if not isinstance(block, dict):
        return [((BLOCK,), "must be a mapping of s3dlio settings")]
    problems: list[tuple[KeyPath, str]] = []
    engine = data.get("range_engine")
    if engine is None:
        engine = data["range_engine"] = {}
    if not isinstance(engine, dict):
        return []  # range_engine's own validation reports it
    for key, value in block.items():
        path: KeyPath = (BLOCK, key)
        if key in RANGE_KEYS:
            target, factor = RANGE_KEYS[key]
            if target in engine:
                problems.append((path, f"sets range_engine.{target}, which the file also sets; keep one"))
            elif factor != 1 and (isinstance(value, bool) or not isinstance(value, int | float)):
                problems.append((path, f"must be a number of MiB, not {value!r}"))
            else:
                engine[target] = value * factor if factor != 1 else value
        elif key in ACCEPTED_AS and value == ACCEPTED_AS[key]:
            continue
        elif key in ACCEPTED_AS:
            problems.append((path, f"only {ACCEPTED_AS[key]!r} is accepted: {_RUNTIME}"))
        elif key in REFUSED:
            problems.append((path, f"has no equivalent in sbench: {REFUSED[key]}"))
        else:
            known = ", ".join([*RANGE_KEYS, *ACCEPTED_AS, *REFUSED])
            problems.append((path, f"unknown key `{key}` (s3dlio_optimization keys: {known})"))
    if not engine:
        del data["range_engine"]
    return problems
