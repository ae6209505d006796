"""Keep the values of `distributed_env` and `agents[].env` out of the copy of the workload file that goes into
the results directory (config.yaml): those values are credentials as often as not, and results directories
are shared, archived and attached to tickets. The names stay, so the copy still says what was set.
"""

from __future__ import annotations

from collections.abc import Mapping

from sbench.config.problems import KeyPath

REDACTED = "'<redacted>'"


def is_secret(path: KeyPath) -> bool:
    """True for the value of one environment variable of the config (`distributed_env.NAME`,
    `distributed.agents[i].env.NAME`)."""
    return (len(path) == 2 and path[0] == "distributed_env") or (
        len(path) == 5 and path[:2] == ("distributed", "agents") and path[3] == "env"
    )


def redact_secrets(text: str, spans: Mapping[KeyPath, tuple[int, int]]) -> str:
    """`text` with every secret scalar (by its character span) replaced by REDACTED; a block scalar's
    closing line break is kept, so the next key stays on its own line."""
    cuts = sorted({span for path, span in spans.items() if is_secret(path)}, reverse=True)
    for start, end in cuts:
        tail = "\n" if text[start:end].endswith("\n") else ""
        text = text[:start] + REDACTED + tail + text[end:]
    return text
