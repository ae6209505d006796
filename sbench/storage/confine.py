"""Every key stays inside its root: one rule, used by config validation, preflight and the storage drivers.

A run addresses storage as (root, key): the root is the `target`, a multi-endpoint endpoint or an agent's
`target_override`; keys and op paths are relative to it. Two ways out of a root exist, and both are closed:

- **Lexically**, with a `..` path segment (`../victim/`, `a/../../etc`). sbench refuses every `..` segment
  in a path or key, also one that would stay inside (`a/../b`): object stores keep `..` as a literal key part
  (and some HTTP layers normalise it away), file systems resolve it, so the same config would address
  different objects on different backends. Writing the path without it is always possible.
- **Through symlinks** (file:// and direct:// only): a directory inside the target that is a symlink to
  somewhere else. `RootGuard` resolves each directory a key lives in once (realpath) and caches the verdict,
  so the per-op cost is one set lookup; a directory that resolves outside the root is refused with
  `ErrorClass.OUTSIDE_ROOT` (counted like any failed op, never followed). Final path components are opened
  with O_NOFOLLOW by the file driver, and DELETE unlinks a symlink itself, never what it points to.

Limit, stated plainly: a directory verified once is trusted for the rest of the backend's life, so another
process that swaps an already verified directory for a symlink mid-run is not caught (closing that race
would cost a syscall per op). A symlink planted at a directory the run has not used yet, or where sbench
creates directories (PUT into a new directory, MKDIR), is caught, because those paths are resolved again.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sbench.storage.base import ErrorClass, StorageError

#: How many verified directories a backend remembers before it starts over (a tree of 64M files has ~350k
#: directories; one entry is ~100 bytes).
MAX_VERIFIED_DIRS = 1 << 20

DOTDOT_WHY = (
    "sbench refuses `..` in paths, since object stores keep it as a literal key part while file systems "
    "climb out of the directory with it"
)


def has_dotdot(path: str) -> bool:
    """True when `path` has a `..` segment (`/` separated); `a..b` or `..x` are ordinary names."""
    return ".." in path and ".." in path.split("/")


def dotdot_problem(path: str) -> str | None:
    """The message for a path with a `..` segment, or None when it has none."""
    if not has_dotdot(path):
        return None
    return f"{path!r} contains a `..` segment ({DOTDOT_WHY}); write the path without it"


def outside_root(action: str, uri: str, detail: str) -> StorageError:
    """The error every driver raises for a key that would leave its root (never retried, counted)."""
    return StorageError(
        ErrorClass.OUTSIDE_ROOT, f"{action} refused: {detail}; sbench never leaves the root", uri=uri
    )


def confine_key(key: str, action: str, uri_of: Callable[[str], str]) -> str:
    """`key` when it has no `..` segment; else StorageError(OUTSIDE_ROOT). For the object-store drivers,
    whose keys are strings joined to a prefix: the check is one substring search per call."""
    if ".." in key and has_dotdot(key):
        raise outside_root(action, uri_of(key), f"the key {key!r} has a `..` segment")
    return key


def real_inside(root_real: str, path: str) -> tuple[bool, str]:
    """(is the resolved `path` the root or below it, the resolved path); symlinks and `..` resolved."""
    real = os.path.realpath(path)
    slash = root_real if root_real.endswith("/") else root_real + "/"
    return real == root_real or real.startswith(slash), real


class RootGuard:
    """The symlink half of the rule for one file:// or direct:// root (see the module docstring).

    Thread-safe without a lock: the cache is a set of strings, and CPython's set add/lookup are atomic; a
    race only means a directory is resolved twice.
    """

    __slots__ = ("_prefix", "real", "root", "verified")

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/") or "/"
        self._prefix = self.root if self.root.endswith("/") else self.root + "/"
        #: the root's own real path, taken when the backend opens (a target swapped for a symlink later
        #: then resolves elsewhere and is refused)
        self.real = os.path.realpath(self.root)
        #: relative directories (no leading or trailing `/`) known to resolve inside the root
        self.verified: set[str] = {""}

    def check_dir(self, rel_dir: str, action: str, uri: str) -> None:
        """Refuse when `rel_dir` resolves outside the root; cache it once it exists and is inside."""
        if rel_dir in self.verified:
            return
        if has_dotdot(rel_dir):  # checked on a cache miss only: verified directories never have one
            raise outside_root(action, uri, f"the directory {rel_dir!r} has a `..` segment")
        real = self.check_path(rel_dir, action, uri)
        if os.path.isdir(real):  # a directory that does not exist yet is resolved again when it is used
            if len(self.verified) >= MAX_VERIFIED_DIRS:
                self.verified.clear()
                self.verified.add("")
            self.verified.add(rel_dir)

    def check_path(self, rel: str, action: str, uri: str) -> str:
        """The real path of `rel` (symlinks in every component followed) when it stays inside the root."""
        inside, real = real_inside(self.real, self._prefix + rel)
        if not inside:
            raise outside_root(action, uri, f"{self._prefix + rel} resolves to {real}, outside {self.real}")
        return real

    def forget(self, rel_dir: str, recursive: bool) -> None:
        """A directory sbench removed is resolved again if it comes back (maybe as a symlink)."""
        if recursive:
            self.verified.clear()
            self.verified.add("")
        else:
            self.verified.discard(rel_dir)
