"""Which of the driver's environment variables travel to the agents and shard tasks, and how.

A user who runs `sbench run` with credentials in the shell expects every agent to use them, wherever Ray
places it (sai3 HEAD forwarded an allow-list for the same reason). Only storage-client variables go; the
node's own identity (SBENCH_AGENT_ID) stays with the node.

How they travel matters as much as which: Ray writes a task's or actor's `runtime_env` in full to
`runtime_env_agent.log` (0644, kept after the run) and shows it in its state API and dashboard, so secrets
never go there, nor into actor names, options or job metadata. They go as one small argument of the agent's
`configure` call and of every shard task (inlined in the call, held in memory only), wrapped in
`ForwardedEnv`, whose repr shows names only, so a log line, a traceback or an exception that formats its
arguments cannot print a value. The worker applies them before it builds any storage client; a task puts
the worker's environment back when it ends, because Ray reuses a worker process for later tasks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "GCS_", "GCLOUD_", "CLOUDSDK_")
NAMES = frozenset(
    {
        "STORAGE_EMULATOR_HOST",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
    }
)
#: set per node on purpose, never copied from the driver
NODE_LOCAL = frozenset({"SBENCH_AGENT_ID"})


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed variables of the driver's environment."""
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in environ.items()
        if name not in NODE_LOCAL and (name in NAMES or name.startswith(PREFIXES))
    }


class ForwardedEnv:
    """The forwarded variables in transit: pickles with its values (for the one call that carries it),
    prints with names only."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    @classmethod
    def capture(cls, environ: Mapping[str, str] | None = None) -> ForwardedEnv:
        """The allow-listed variables of this process's environment (the driver's), now."""
        return cls(forwarded_env(environ))

    @property
    def names(self) -> list[str]:
        return sorted(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ForwardedEnv(names={self.names})"

    __str__ = __repr__

    def __getstate__(self) -> dict[str, str]:
        return self._values

    def __setstate__(self, state: dict[str, str]) -> None:
        self._values = dict(state)

    def apply(self) -> None:
        """Set the variables in this process for good (an agent actor: the process is the run's own)."""
        os.environ.update(self._values)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Set the variables for the block, then restore what was there before (a task in a reused worker:
        a later task, maybe of another run, must not see them)."""
        before = {name: os.environ.get(name) for name in self._values}
        os.environ.update(self._values)
        try:
            yield
        finally:
            for name, old in before.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old
