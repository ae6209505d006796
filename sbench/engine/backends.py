"""The backends one agent uses in a stage, opened once per root (sai3's store cache) and closed at the end.

Relative op paths resolve against `target`; when a `multi_endpoint` block exists they go through one
MultiEndpointBackend over its endpoints (sai3 HEAD semantics: the block applies to every op, so the per-op
`use_multi_endpoint` flag is not needed). A URI that lies under the target is served by the target backend
(so it is routed and counted like the rest); a URI under another endpoint gets its own backend rooted at its
directory. A relative path with a `..` segment, or a URI under no root while the config has one, is a
ConfigError (config validation refuses both first; this is the agent's own defence, with its own config).
"""

from __future__ import annotations

from typing import Any

from sbench.config.models import Config
from sbench.errors import ConfigError
from sbench.oplog.capture import wrap as capture_wrap
from sbench.storage.base import Backend
from sbench.storage.confine import dotdot_problem
from sbench.storage.uri import canonical, relative_to, uri_under


def _split_dir(uri: str) -> tuple[str, str]:
    """(directory URI to root a backend at, remaining pattern) of an absolute op URI."""
    scheme, rest = uri.split("://", 1)
    if "**" in rest:
        head = rest.split("**", 1)[0]
        cut = head.rfind("/")
    elif rest.endswith("/"):
        return uri.rstrip("/"), ""
    else:
        cut = rest.rfind("/")
    if cut < 0:
        return uri, ""
    directory, remainder = rest[:cut], rest[cut + 1 :]
    if "*" in directory:
        raise ConfigError(f"path {uri!r}: `*` is only allowed in the last path component")
    if scheme in ("file", "direct") and not directory:
        directory = "/"
    return f"{scheme}://{directory}", remainder


class BackendSet:
    """Opens and caches the backends of one agent for one stage; `close()` releases them all."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._by_root: dict[str, Backend] = {}
        self._target: Backend | None = None
        self.multi: Any = None

    # -- opening -----------------------------------------------------------------------------------------
    def _options(self, uri: str) -> Any:
        from sbench.plan.objectspaces import storage_options

        return storage_options(self.config, uri)

    def adopt(self, uri: str, backend: Backend) -> None:
        """Use an already opened backend for `uri` (the Ray agent reuses its clients across stages; tests
        inject a backend that stalls or counts calls)."""
        self._by_root[canonical(uri)] = backend

    def open(self, uri: str) -> Backend:
        """The backend rooted exactly at `uri` (cached), wrapped by the op-log capture when one is on."""
        from sbench.storage.registry import open_backend

        root = canonical(uri)
        backend = self._by_root.get(root)
        if backend is None:
            backend = capture_wrap(open_backend(uri, self._options(uri)))
            self._by_root[root] = backend
        return backend

    @property
    def target_uri(self) -> str | None:
        me = self.config.multi_endpoint
        if self.config.target:
            return self.config.target
        return me.endpoints[0] if me is not None and me.endpoints else None

    def target(self) -> Backend:
        """The backend relative paths use: the multi-endpoint router when configured, else `target`."""
        if self._target is not None:
            return self._target
        me = self.config.multi_endpoint
        if me is not None and me.endpoints:
            from sbench.storage.multi import MultiEndpointBackend

            backends = [self.open(ep) for ep in me.endpoints]
            strategy = str(getattr(me.strategy, "value", me.strategy))
            self.multi = MultiEndpointBackend(backends, list(me.endpoints), strategy)
            self._target = self.multi
        elif self.config.target:
            self._target = self.open(self.config.target)
        else:
            raise ConfigError(
                "the workload uses relative paths but neither `target` nor `multi_endpoint` is set",
                hint="Set `target: file:///some/dir/` (or s3://bucket/prefix/ ...), or give every "
                "op path as a full URI.",
            )
        return self._target

    def _roots(self) -> list[str]:
        me = self.config.multi_endpoint
        return ([self.config.target] if self.config.target else []) + (list(me.endpoints) if me else [])

    def _check_under_roots(self, uri: str) -> None:
        roots = self._roots()
        if roots and not any(uri_under(root, uri) for root in roots):
            raise ConfigError(
                f"{uri} is outside this agent's storage roots ({', '.join(roots)}); sbench never leaves them",
                hint="Write the path relative to `target` (or under a multi_endpoint endpoint).",
            )

    def locate(self, path: str) -> tuple[Backend, str]:
        """(backend, relative key or pattern) for an op path or URI."""
        if "://" not in path:
            why = dotdot_problem(path)
            if why is not None:
                raise ConfigError(f"op path {why}")
            return self.target(), path.lstrip("/")
        target_uri = self.target_uri
        if target_uri is not None:
            rel = relative_to(canonical(target_uri), _canonical_pattern(path))
            if rel is not None:
                return self.target(), (rel + "/" if rel and path.endswith("/") else rel)
        self._check_under_roots(path)
        directory, rest = _split_dir(path)
        return self.open(directory), rest

    def locate_dir(self, uri: str) -> tuple[Backend, str]:
        """(backend, relative directory prefix) for a base URI such as a prepare `base_uri`."""
        target_uri = self.target_uri
        if target_uri is not None:
            rel = relative_to(canonical(target_uri), canonical(uri))
            if rel is not None:
                return self.target(), rel
        self._check_under_roots(uri)
        return self.open(uri), ""

    def endpoint_interval(self) -> list[Any]:
        """Per-endpoint counters and latencies since the previous call (empty without a router)."""
        return self.multi.take_endpoint_interval() if self.multi is not None else []

    def close(self) -> None:
        backends = list(self._by_root.values())
        if self.multi is not None:
            backends.append(self.multi)
        self._by_root.clear()
        self._target = self.multi = None
        for backend in backends:
            backend.close()


def _canonical_pattern(path: str) -> str:
    """Canonical spelling of the part of an op URI before any glob, with the glob part re-attached."""
    star = path.find("*")
    if star < 0:
        return canonical(path) + ("/" if path.endswith("/") else "")
    cut = path.rfind("/", 0, star)
    head, tail = path[:cut], path[cut:]
    return canonical(head) + tail
