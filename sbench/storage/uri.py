"""Parse storage URIs into their parts, once, with errors that point at the wrong part.

Every driver and the multi-endpoint router start from a `StorageUri`, so the rules for what a URI means live
in one place:

- `file:///abs/path/` and `direct:///abs/path/` (an empty or `localhost` authority; the path must be absolute
  because agents on other hosts cannot resolve a relative one the same way);
- `s3://bucket/prefix`, `gs://bucket/prefix` (`gcs://` is an alias) and `az://ACCOUNT/CONTAINER/prefix`
  (`azure://` is an alias);
- for the cloud schemes, an authority with a port names the endpoint, as sai3 multi-endpoint configs do:
  `s3://HOST:PORT/bucket/prefix`, `gs://HOST:PORT/bucket/prefix`, `az://HOST:PORT/ACCOUNT/CONTAINER/prefix`.
  The endpoint is `http://HOST:PORT` unless `https` is asked for (BackendOptions.https);
- `null://any/path/` (sbench.storage.null): no storage behind it. Its path is a name in the process's
  in-memory index (`null:///a/` and `null://a/` are the same place), and it is the one scheme with a query:
  `?latency=200us&dist=exp` sets the service time (sbench.storage.servicetime checks it here, so a bad value
  is a config error naming the URI's key). sbench joins paths onto URIs by appending, so more path may
  follow the query: `null:///b/?latency=1ms/agent-1/` is `null://b/agent-1/` with 1 ms per call.

No path may have a `..` segment (sbench.storage.confine says why): a URI with one is a ConfigError, and
`object_key` refuses a key with one (StorageError OUTSIDE_ROOT), so no driver ever sends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sbench.errors import ConfigError
from sbench.storage.confine import DOTDOT_WHY, confine_key, has_dotdot

#: Scheme aliases users write -> the canonical scheme drivers are registered under.
SCHEME_ALIASES: dict[str, str] = {
    "file": "file",
    "direct": "direct",
    "s3": "s3",
    "az": "az",
    "azure": "az",
    "gs": "gs",
    "gcs": "gs",
    "null": "null",
}
CLOUD_SCHEMES = frozenset({"s3", "az", "gs"})
LOCAL_SCHEMES = frozenset({"file", "direct"})
NULL_SCHEME = "null"

_EXAMPLES = (
    "file:///abs/path/, direct:///abs/path/, s3://bucket/prefix, s3://HOST:PORT/bucket/prefix, "
    "az://ACCOUNT/CONTAINER/prefix, gs://bucket/prefix, null://any/path/"
)
# Bucket, container and account names: permissive enough for S3-compatible stores (uppercase, underscores),
# strict enough to catch a pasted path, a space or a glob in the wrong place.
_NAME_RE = re.compile(r"^[A-Za-z0-9$][A-Za-z0-9._-]{0,254}$")
_HOST_PORT_RE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]/]+):(?P<port>[^:]*)$")


@dataclass(frozen=True, slots=True)
class StorageUri:
    """One parsed storage URI.

    `prefix` has no leading `/` for the cloud schemes and is the absolute path for file/direct. `bucket` is
    the bucket (S3, GCS) or container (Azure), empty for file/direct.
    """

    raw: str
    scheme: str
    bucket: str = ""
    prefix: str = ""
    account: str | None = None
    endpoint: str | None = None
    #: null:// only: the query (`latency=200us&dist=exp`), already checked by sbench.storage.servicetime
    query: str = ""

    @property
    def is_cloud(self) -> bool:
        return self.scheme in CLOUD_SCHEMES

    @property
    def key_prefix(self) -> str:
        """The prefix as a directory (`a/b/`, or `` for the bucket root), ready to prepend to a key."""
        if not self.prefix or self.prefix.endswith("/"):
            return self.prefix
        return self.prefix + "/"

    def object_key(self, key: str) -> str:
        """The store-level key (or absolute path) of a key relative to this URI; a key with a `..` segment
        is refused (StorageError OUTSIDE_ROOT) instead of being joined."""
        return self.key_prefix + confine_key(key, "access", self._uri_of).lstrip("/")

    def _uri_of(self, key: str) -> str:
        return self.root.rstrip("/") + "/" + key.lstrip("/")

    def relative_key(self, store_key: str) -> str:
        """Inverse of `object_key`: strip this URI's prefix from a store-level key (used by listings)."""
        kp = self.key_prefix
        return store_key[len(kp):] if kp and store_key.startswith(kp) else store_key

    def child(self, key: str) -> StorageUri:
        """The URI of a sub-prefix or object under this one (used for per-agent prefixes and op paths)."""
        return replace(self, raw=self.root.rstrip("/") + "/" + key.lstrip("/"), prefix=self.object_key(key))

    @property
    def root(self) -> str:
        """A canonical spelling of the URI (aliases resolved), used as the backend's root_uri."""
        if self.scheme in LOCAL_SCHEMES or self.scheme == NULL_SCHEME:
            return f"{self.scheme}://{self.prefix}"
        authority = ""
        if self.endpoint:
            authority = self.endpoint.split("://", 1)[1] + "/"
        parts = [self.account] if self.scheme == "az" else []
        parts.append(self.bucket)
        if self.prefix:
            parts.append(self.prefix)
        return f"{self.scheme}://{authority}" + "/".join(p for p in parts if p is not None)


def parse_uri(uri: str, *, https: bool = False) -> StorageUri:
    """Split a storage URI into scheme, endpoint, account, bucket and prefix; ConfigError when malformed.

    `https` picks the scheme of an endpoint given as `HOST:PORT` in the authority (http by default, as local
    S3-compatible servers and sai3 multi-endpoint configs expect).
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError("Empty storage URI.", hint=f"Use one of: {_EXAMPLES}.")
    text = uri.strip()
    if "://" not in text:
        raise ConfigError(
            f"Storage URI {text!r} has no scheme (the part before '://').",
            hint=f"Write it with a scheme, for example file://{_abs_hint(text)} or s3://bucket/prefix.",
        )
    raw_scheme, rest = text.split("://", 1)
    if has_dotdot(rest):
        raise ConfigError(
            f"Storage URI {text!r} contains a `..` segment ({DOTDOT_WHY}).",
            hint="Write the URI without `..`: name the directory or prefix itself.",
        )
    scheme = SCHEME_ALIASES.get(raw_scheme.lower())
    if scheme is None:
        known = ", ".join(sorted(SCHEME_ALIASES))
        raise ConfigError(
            f"Storage URI {text!r}: unknown scheme {raw_scheme!r}.",
            hint=f"Supported schemes: {known}.",
        )
    if scheme in LOCAL_SCHEMES:
        return _parse_local(text, scheme, rest)
    if scheme == NULL_SCHEME:
        return _parse_null(text, rest)
    return _parse_cloud(text, scheme, rest, https)


def _parse_local(text: str, scheme: str, rest: str) -> StorageUri:
    authority, sep, path = rest.partition("/")
    if authority and authority.lower() != "localhost":
        raise ConfigError(
            f"Storage URI {text!r}: {scheme}:// needs an absolute path, but {authority!r} comes before it "
            f"(read as a host name).",
            hint=f"Use three slashes for an absolute path: {scheme}:///abs/path/ "
            f"(relative paths are not allowed because every agent must resolve them the same way).",
        )
    if not sep:
        raise ConfigError(
            f"Storage URI {text!r}: the path after {scheme}:// is missing.",
            hint=f"Use {scheme}:///abs/path/.",
        )
    if "\x00" in path:
        raise ConfigError(f"Storage URI {text!r}: the path contains a NUL byte.")
    return StorageUri(raw=text, scheme=scheme, bucket="", prefix="/" + path)


def _parse_null(text: str, rest: str) -> StorageUri:
    """`null://` + any path, with an optional `?query` that runs to the next `/` (see the module docstring);
    the prefix has no leading `/`, so `null:///a/` and `null://a/` name the same place."""
    from sbench.storage.servicetime import parse_service_time

    query = ""
    mark = rest.find("?")
    if mark >= 0:
        end = rest.find("/", mark)
        query = rest[mark + 1 :] if end < 0 else rest[mark + 1 : end]
        head, tail = rest[:mark], ("" if end < 0 else rest[end + 1 :])
        rest = head.rstrip("/") + "/" + tail if head and tail else head + tail
        parse_service_time(query, text)
    prefix = rest.lstrip("/")
    if "//" in prefix or "\x00" in prefix:
        raise ConfigError(
            f"Storage URI {text!r}: the path {prefix!r} contains an empty component ('//') or a NUL byte.",
            hint="Write the path with single slashes, e.g. null:///bench/data/.",
        )
    return StorageUri(raw=text, scheme=NULL_SCHEME, prefix=prefix, query=query)


def _parse_cloud(text: str, scheme: str, rest: str, https: bool) -> StorageUri:
    segments = rest.split("/")
    authority = segments[0]
    endpoint: str | None = None
    match = _HOST_PORT_RE.match(authority)
    if match:
        endpoint = _endpoint(text, match.group("host"), match.group("port"), https)
        segments = segments[1:]
    account: str | None = None
    if scheme == "az":
        account = _name(text, segments[0] if segments else "", "storage account", "az://ACCOUNT/CONTAINER/prefix")
        segments = segments[1:]
        what, example = "container", "az://ACCOUNT/CONTAINER/prefix"
    else:
        what, example = "bucket", f"{scheme}://bucket/prefix"
    bucket = _name(text, segments[0] if segments else "", what, example)
    prefix = "/".join(segments[1:])
    if "//" in prefix:
        raise ConfigError(
            f"Storage URI {text!r}: the prefix {prefix!r} contains an empty path component ('//').",
            hint="Remove the doubled slash; object keys with empty components are almost never intended.",
        )
    return StorageUri(
        raw=text, scheme=scheme, bucket=bucket, prefix=prefix, account=account, endpoint=endpoint
    )


def _endpoint(text: str, host: str, port: str, https: bool) -> str:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"Storage URI {text!r}: the endpoint port {port!r} is not a number between 1 and 65535.",
            hint="Write the endpoint as HOST:PORT, for example s3://10.0.0.5:9000/bucket/prefix.",
        )
    return f"{'https' if https else 'http'}://{host}:{int(port)}"


def _name(text: str, value: str, what: str, example: str) -> str:
    if not value:
        raise ConfigError(f"Storage URI {text!r}: the {what} name is missing.", hint=f"Use {example}.")
    if not _NAME_RE.match(value):
        raise ConfigError(
            f"Storage URI {text!r}: {value!r} is not a valid {what} name "
            f"(letters, digits, '.', '-', '_' only).",
            hint=f"Use {example}.",
        )
    return value


def _abs_hint(path: str) -> str:
    return path if path.startswith("/") else "/abs/" + path.lstrip("./")


def glob_head(uri: str) -> str:
    """The part of a path or URI before its first glob component (`s3://b/p/data/*` -> `s3://b/p/data/`)."""
    star = uri.find("*")
    return uri if star < 0 else uri[: uri.rfind("/", 0, star) + 1]


def canonical(uri: str) -> str:
    """The canonical spelling of a URI (aliases resolved, no query), without a trailing `/` unless the URI
    is its scheme's top (`null://`, `file:///`): stripping those would leave no URI at all."""
    root = parse_uri(uri).root
    stripped = root.rstrip("/")
    return root if stripped.endswith(":") else stripped


def relative_to(root: str, uri: str) -> str | None:
    """`uri` relative to `root`, both canonical (trailing `/` ignored): `` for the root itself, None when
    `uri` lies elsewhere."""
    root_s, uri_s = root.rstrip("/"), uri.rstrip("/")
    if uri_s == root_s:
        return ""
    head = root if root.endswith("/") else root + "/"
    return uri_s[len(head) :] if uri_s.startswith(head) else None


def uri_under(root: str, uri: str) -> bool:
    """True when `uri` (a URI, possibly with a glob) names the root itself or something below it; both are
    compared in their canonical spelling (scheme aliases, endpoint authority)."""
    return relative_to(canonical(root), canonical(glob_head(uri))) is not None
