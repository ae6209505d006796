"""Environment variables in transit to the process that uses them: values held in memory only.

Values here are secrets as often as not (credentials), so `ForwardedEnv` pickles with its values, for the one
call that carries it, and prints with names only: a log line, a traceback or an exception that formats its
arguments cannot show a value. cluster.env says which variables the driver forwards to Ray agents and how;
the in-process fleet applies the config's own for its run (run.inprocess).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from pydantic import SecretStr


class ForwardedEnv:
    """The forwarded variables in transit: pickles with its values (for the one call that carries it),
    prints with names only."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def adding(self, *layers: Mapping[str, SecretStr]) -> ForwardedEnv:
        """These variables with each layer's set over them, in order (a later layer wins)."""
        values = dict(self._values)
        for layer in layers:
            values.update((name, secret.get_secret_value()) for name, secret in layer.items())
        return ForwardedEnv(values)

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

