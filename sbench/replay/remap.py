"""Where a logged op goes in a replay: `--target` (1 -> 1) or `--remap` rules (1 -> 1, 1 -> N, N -> 1, regex).

A logged op's source URI is its endpoint's scheme and its `file` column (`s3://bucket/key`,
`file:///abs/path`, `s3://host:port/bucket/key` for an explicit S3 endpoint).

- `--target URI` is sai3's 1 -> 1 retarget: the source URI without its endpoint (`s3://bucket`, `file://`)
  goes under the target: `s3://bench/data/x` with `--target file:///tmp/r/` becomes `file:///tmp/r/data/x`,
  `file:///mnt/d/x` becomes `file:///tmp/r/mnt/d/x`. A query on the target (`null:///r/?latency=1ms`) stays.
- `--remap FILE` applies the rules of sbench.replay.settings in order; the first that matches decides, a URI
  no rule matches keeps its source URI. Parts are sai3's: host (an explicit endpoint's host:port, an Azure
  account), bucket, prefix (the key's directory with its `/`), key (the last part). A target's `prefix: ""`
  keeps the source prefix, any other prefix replaces it. Fan-out picks round_robin (per rule, in log order),
  random (seeded: a replay is repeatable) or sticky_key (a hash of the key: one key, one target always).

Remapping runs once per op in the one thread that reads the log (the driver in a distributed replay), so
round-robin follows log order and needs no lock.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from sbench.errors import ConfigError
from sbench.replay.settings import ManyTargets, MatchSpec, RemapFile, RuleKind, Strategy, TargetSpec

#: schemes whose URIs have no bucket host part: the bucket is the path's first part
_PATH_SCHEMES = ("file", "direct", "null")


@dataclass(slots=True)
class UriParts:
    """A URI as the remap rules see it; `uri()` puts it back together."""

    scheme: str
    host: str
    bucket: str
    prefix: str
    key: str
    query: str = ""

    @classmethod
    def parse(cls, uri: str) -> UriParts:
        if "://" not in uri:
            raise ConfigError(f"{uri!r} is not a URI (scheme://...)")
        scheme, rest = uri.split("://", 1)
        rest, _, query = rest.partition("?")
        host = ""
        if scheme in _PATH_SCHEMES:
            rest = rest.lstrip("/")
        else:
            first, _, tail = rest.partition("/")
            if ":" in first or scheme == "az":  # an explicit endpoint (host:port) or an Azure account
                host, rest = first, tail
        bucket, _, path = rest.partition("/")
        cut = path.rfind("/") + 1
        return cls(scheme, host, bucket, path[:cut], path[cut:], query)

    def uri(self) -> str:
        lead = "/" if self.scheme in _PATH_SCHEMES else ""
        host = f"{self.host}/" if self.host else ""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{lead}{host}{self.bucket}/{self.prefix}{self.key}{query}"


def source_uri(endpoint: str, file: str) -> str:
    """The URI a log row names: its endpoint's scheme and its file column (s3dlio's `file` has no scheme)."""
    if "://" in file:
        return file
    return f"{_scheme(endpoint)}://{file}"


def _scheme(endpoint: str) -> str:
    return endpoint.split("://", 1)[0] if "://" in endpoint else "file"


def map_column(mapper: Callable[[str, str], str], endpoints: list[str], files: list[str]) -> list[str]:
    """`mapper` over a batch's endpoint and file columns. The log's own URIs (no --target, no --remap) of
    rows with one endpoint and schemeless files, the usual batch, are one C-level map (replay.plan)."""
    if mapper is source_uri and len(set(endpoints)) == 1 and "://" not in "\n".join(files):
        return list(map(f"{_scheme(endpoints[0])}://".__add__, files))
    return list(map(mapper, endpoints, files))


def retarget(target: str, endpoint: str, file: str) -> str:
    """sai3's `--target`: the source URI without its endpoint, under `target` (see the module docstring)."""
    uri = source_uri(endpoint, file)
    rest = uri[len(endpoint):] if endpoint and uri.startswith(endpoint) else uri.split("://", 1)[1]
    base, _, query = target.partition("?")
    out = base.rstrip("/") + "/" + rest.lstrip("/")
    return f"{out}?{query}" if query else out


class Remapper:
    """The rules of one remap file, applied in order (see the module docstring)."""

    def __init__(self, remap: RemapFile, *, seed: int = 0) -> None:
        self.rules = list(remap.rules)
        self._rr = [0] * len(self.rules)
        self._rng = random.Random(seed)
        self._regex = [re.compile(r.regex) if r.regex is not None else None for r in self.rules]
        self._replace = [_python_template(r.replace) if r.replace is not None else "" for r in self.rules]
        #: per rule, how many ops it mapped (the console and summary.json show them)
        self.hits = [0] * len(self.rules)
        self.unmatched = 0

    def __call__(self, uri: str) -> str:
        parts: UriParts | None = None
        for i, rule in enumerate(self.rules):
            kind = rule.kind
            if kind is RuleKind.REGEX:
                pattern = self._regex[i]
                assert pattern is not None
                if pattern.search(uri):
                    self.hits[i] += 1
                    return pattern.sub(self._replace[i], uri, count=1)
                continue
            parts = parts or UriParts.parse(uri)
            if kind is RuleKind.CONSOLIDATE:
                assert rule.match_any is not None and rule.map_to is not None
                if any(_matches(parts, spec) for spec in rule.match_any):
                    self.hits[i] += 1
                    return _apply(parts, rule.map_to)
                continue
            assert rule.match is not None
            if not _matches(parts, rule.match):
                continue
            self.hits[i] += 1
            if kind is RuleKind.SIMPLE:
                assert rule.map_to is not None
                return _apply(parts, rule.map_to)
            assert rule.map_to_many is not None
            return _apply(parts, self._pick(i, rule.map_to_many, parts.key))
        self.unmatched += 1
        return uri

    def _pick(self, index: int, many: ManyTargets, key: str) -> TargetSpec:
        n = len(many.targets)
        if many.strategy is Strategy.ROUND_ROBIN:
            chosen = self._rr[index]
            self._rr[index] = (chosen + 1) % n
        elif many.strategy is Strategy.RANDOM:
            chosen = self._rng.randrange(n)
        else:
            chosen = zlib.crc32(key.encode()) % n
        return many.targets[chosen]

    def report(self) -> dict[str, object]:
        return {
            "rules": [{"kind": r.kind.value, "ops": n} for r, n in zip(self.rules, self.hits, strict=True)],
            "unmatched": self.unmatched,
        }


def _matches(parts: UriParts, spec: MatchSpec) -> bool:
    if spec.host is not None and parts.host != spec.host:
        return False
    if spec.bucket is not None and parts.bucket != spec.bucket:
        return False
    return spec.prefix is None or parts.prefix.startswith(spec.prefix)


def _apply(parts: UriParts, target: TargetSpec) -> str:
    prefix = target.prefix or parts.prefix
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return UriParts(parts.scheme, parts.host, target.bucket, prefix, parts.key, parts.query).uri()


def _python_template(replace: str) -> str:
    """sai3's `$1`/`${1}` captures as Python's `\\g<1>` (a literal backslash stays literal)."""
    escaped = replace.replace("\\", "\\\\")
    return re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", escaped)
