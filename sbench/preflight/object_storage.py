"""Checks for s3://, az:// and gs:// roots: real calls through the same drivers the benchmark will use.

Each step narrows down where a failure lives, so the suggestion can name the thing to fix: which credentials
the driver picked (names of variables and files only, never values), whether the endpoint answers at all
(DNS, TCP, TLS with short timeouts, so a dead endpoint costs seconds, not the driver's retry budget), whether
the bucket exists and may be listed (one LIST of at most one key), and, when the run writes, a PUT/GET/DELETE
of a small uniquely named probe object that is deleted even when a later step fails. GET/STAT paths are
checked the same way the engine resolves them: an exact key must exist unless this run's prepare creates it.
"""

from __future__ import annotations

import itertools
import os
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from sbench.errors import ConfigError, RunFailed
from sbench.layout.paths import Pattern, pattern_regex
from sbench.preflight.net import DNS_TIMEOUT_S, resolve_host
from sbench.preflight.plan import ReadTarget, RootPlan
from sbench.preflight.result import CheckList, ErrorType
from sbench.preflight.retry import Tries
from sbench.storage.base import Backend, ErrorClass, StorageError
from sbench.storage.options import BackendOptions
from sbench.storage.registry import open_backend
from sbench.storage.uri import StorageUri, parse_uri

PROBE_PREFIX = ".sbench-preflight-"
PROBE_SIZE = 1024
CONNECT_TIMEOUT_S = 3.0
TLS_TIMEOUT_S = 5.0
API_TIMEOUT_S = 20.0
#: Keys a glob check looks at before it gives up (a warning, not an error: the match may come later).
GLOB_SCAN_LIMIT = 1000

_LABEL = {"s3": "s3", "az": "azure", "gs": "gcs"}
_BUCKET_WORD = {"s3": "bucket", "az": "container", "gs": "bucket"}
#: Variable naming a private CA bundle, per client family (SSL_CERT_FILE works for all through OpenSSL).
_CA_VARIABLE = {"s3": "AWS_CA_BUNDLE"}
#: Texts that mean "who you are was not accepted" (bad key, bad signature, expired token). Azurite reports a
#: bad key as AuthorizationFailure with "Server failed to authenticate", so these win over permission words.
_AUTHENTICATION_WORDS = (
    "failed to authenticate",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthenticationFailed",
    "ExpiredToken",
    "InvalidToken",
    "InvalidClientTokenId",
    "401 Unauthorized",
)
#: Service codes that mean "who you are is fine, what you want is not allowed".
_PERMISSION_WORDS = (
    "AccessDenied",
    "AuthorizationPermissionMismatch",
    "InsufficientAccountPermissions",
    "AuthorizationFailure",
    "does not have storage.",
)
#: Missing-bucket answers that do not come as a 404: fake-gcs-server's XML API answers 500 "no bucket named".
_MISSING_BUCKET_WORDS = ("NoSuchBucket", "no bucket named", "ContainerNotFound", "bucket does not exist")

S3_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
)
AZURE_VARIABLES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_ENDPOINT",
)
GCS_VARIABLES = (
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
)


@dataclass(frozen=True, slots=True)
class Access:
    """Where a driver will connect and with which identity (names only: safe to print and store)."""

    endpoint: str
    endpoint_source: str
    credential_source: str
    variables: tuple[str, ...]
    files: tuple[str, ...] = ()
    #: Fix-it text for authentication failures: the variable or file holding the credentials.
    auth_fix: str = ""


def check_object_root(
    root: RootPlan, options: BackendOptions, checks: CheckList, tries: Tries | None = None
) -> None:
    """Every object-storage check for one root, appending to `checks`; storage calls are retried on
    transient errors (`tries`, see preflight.retry)."""
    tries = tries or Tries()
    parsed = parse_uri(root.uri, https=options.https)
    label = _LABEL[parsed.scheme]
    access = _check_credentials(label, parsed, options, root, checks)
    if access is None or not check_reachable(label, access, root, checks, tries):
        return
    short = replace(
        options,
        request_timeout_s=min(options.request_timeout_s, API_TIMEOUT_S),
        connect_timeout_s=min(options.connect_timeout_s, CONNECT_TIMEOUT_S),
    )
    try:
        backend = open_backend(parsed, short)
    except (ConfigError, RunFailed) as exc:
        checks.error(
            f"{label}.open", exc.message, ErrorType.CONFIGURATION, exc.hint or f"fix `{root.source}`"
        )
        return
    try:
        if not _check_list(label, parsed, backend, access, root, checks, tries):
            return
        if root.write:
            probe_write(label, backend, access, root, checks, tries)
        for read in root.reads:
            check_read_target(label, backend, read, checks, access, tries)
    finally:
        backend.close()


# -- credentials -----------------------------------------------------------------------------------------


def _present(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if os.environ.get(n))


def _check_credentials(
    label: str, parsed: StorageUri, options: BackendOptions, root: RootPlan, checks: CheckList
) -> Access | None:
    try:
        access = _resolve_access(parsed, options)
    except RunFailed as exc:
        checks.error(
            f"{label}.credentials",
            exc.message,
            ErrorType.AUTHENTICATION,
            exc.hint or "set the credential variables of this store",
        )
        return None
    except ConfigError as exc:
        checks.error(
            f"{label}.credentials", exc.message, ErrorType.CONFIGURATION, exc.hint or f"fix `{root.source}`"
        )
        return None
    where = ", ".join(access.variables) if access.variables else "no credential variables set"
    files = f"; files: {', '.join(access.files)}" if access.files else ""
    checks.info(
        f"{label}.credentials",
        f"credentials from {access.credential_source} (set: {where}{files}); endpoint "
        f"{access.endpoint} from {access.endpoint_source}",
        details={
            "credential_source": access.credential_source,
            "variables_set": list(access.variables),
            "files": list(access.files),
            "endpoint": access.endpoint,
            "endpoint_source": access.endpoint_source,
        },
    )
    return access


def _resolve_access(parsed: StorageUri, options: BackendOptions) -> Access:
    """Ask the driver's own resolution code, so the check sees exactly what the benchmark will use."""
    if parsed.scheme == "s3":
        from sbench.storage import s3

        session = s3.botocore_session()
        settings = s3.resolve_settings(parsed, options, session)
        credentials = s3.resolve_credentials(session, settings)
        method = getattr(credentials, "method", "botocore chain")
        files = tuple(
            str(p)
            for p in (Path("~/.aws/credentials").expanduser(), Path("~/.aws/config").expanduser())
            if p.is_file()
        )
        endpoint = settings.endpoint_url or f"https://s3.{settings.region}.amazonaws.com"
        fix = (
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            if method == "env"
            else f"check the credentials of profile {session.profile or 'default'} ({method})"
        )
        return Access(endpoint, settings.endpoint_source, method, _present(S3_VARIABLES), files, fix)
    if parsed.scheme == "az":
        from sbench.storage import azure

        creds = azure.resolve_credentials(parsed, options)
        part = {
            "AZURE_STORAGE_CONNECTION_STRING": "the AccountKey or SharedAccessSignature in "
            "AZURE_STORAGE_CONNECTION_STRING",
            "AZURE_STORAGE_ACCOUNT_KEY": "AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_KEY)",
            "AZURE_STORAGE_SAS_TOKEN": "AZURE_STORAGE_SAS_TOKEN (expiry and permissions)",
        }.get(creds.source, creds.source)
        fix = f"check {part} for account {creds.account}"
        source = "the URI / connection string / AZURE_STORAGE_ENDPOINT"
        return Access(creds.endpoint, source, creds.source, _present(AZURE_VARIABLES), (), fix)
    from sbench.storage import gcs

    gcreds = gcs.resolve_credentials(parsed, options)
    endpoint = gcreds.endpoint or "https://storage.googleapis.com"
    source = "STORAGE_EMULATOR_HOST / the URI" if gcreds.endpoint else "Google default"
    files = (gcreds.credentials_file,) if gcreds.credentials_file else ()
    fix = (
        f"check {gcreds.source}"
        if gcreds.kind != "emulator"
        else "the emulator accepts anyone: check STORAGE_EMULATOR_HOST points at it"
    )
    return Access(endpoint, source, f"{gcreds.source} ({gcreds.kind})", _present(GCS_VARIABLES), files, fix)


# -- reachability ----------------------------------------------------------------------------------------


def check_reachable(
    label: str, access: Access, root: RootPlan, checks: CheckList, tries: Tries | None = None
) -> bool:
    url = urlsplit(access.endpoint)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    name = f"{label}.endpoint"
    fix_source = f"(it comes from {access.endpoint_source}; check that setting and `{root.source}`)"
    details: dict[str, object] = {"endpoint": access.endpoint, "host": host, "port": port}
    try:
        addresses = resolve_host(host, port, DNS_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        checks.error(
            name,
            f"cannot resolve {host}: {exc}",
            ErrorType.NETWORK,
            f"check the host name in {access.endpoint} and this node's DNS {fix_source}",
            details=details,
        )
        return False
    details["addresses"] = addresses
    tries = tries or Tries()
    start = time.perf_counter()
    try:
        sock = tries.call(
            lambda: socket.create_connection((addresses[0], port), timeout=CONNECT_TIMEOUT_S),
            retry_os_errors=True,
        )
    except OSError as exc:
        details["attempts"] = tries.last
        what = "refused the connection" if isinstance(exc, ConnectionRefusedError) else f"failed: {exc}"
        checks.error(
            name,
            f"TCP connect to {addresses[0]}:{port} {what}{tries.note()}",
            ErrorType.NETWORK,
            f"is the endpoint {access.endpoint} up? Start the server or fix the endpoint {fix_source}",
            details=details,
        )
        return False
    details["connect_ms"] = round((time.perf_counter() - start) * 1000, 2)
    details["attempts"] = tries.last
    try:
        if url.scheme == "https":
            ca_var = _CA_VARIABLE.get(label, "REQUESTS_CA_BUNDLE")
            context = ssl.create_default_context(cafile=os.environ.get(ca_var) or None)
            sock.settimeout(TLS_TIMEOUT_S)
            try:
                with context.wrap_socket(sock, server_hostname=host) as tls:
                    details["tls_version"] = tls.version()
            except (ssl.SSLError, OSError) as exc:
                checks.error(
                    name,
                    f"TLS handshake with {host}:{port} failed: {exc}",
                    ErrorType.NETWORK,
                    f"check the endpoint's certificate (a private CA needs {ca_var} or SSL_CERT_FILE) or "
                    f"use http:// for a plain-HTTP server {fix_source}",
                    details=details,
                )
                return False
    finally:
        sock.close()
    tls_note = f", TLS {details['tls_version']}" if "tls_version" in details else ""
    checks.success(
        name,
        f"{access.endpoint} reachable ({addresses[0]}, TCP {details['connect_ms']} ms{tls_note})",
        details=details,
    )
    return True


# -- API calls -------------------------------------------------------------------------------------------


def _first(it: Iterator[tuple[str, int]]) -> tuple[str, int] | None:
    try:
        return next(itertools.islice(it, 1), None)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def classify(exc: StorageError, *, permission_if_auth: bool = False) -> ErrorType:
    """Map a driver error class onto the preflight error type."""
    if exc.kind is ErrorClass.AUTH:
        text = exc.message
        if any(word in text for word in _AUTHENTICATION_WORDS):
            return ErrorType.AUTHENTICATION
        if permission_if_auth or any(word in text for word in _PERMISSION_WORDS):
            return ErrorType.PERMISSION
        return ErrorType.AUTHENTICATION
    if exc.kind in (ErrorClass.NETWORK, ErrorClass.TIMEOUT):
        return ErrorType.NETWORK
    if exc.kind is ErrorClass.THROTTLED:
        return ErrorType.RESOURCE
    if exc.kind is ErrorClass.NOT_FOUND:
        return ErrorType.CONFIGURATION
    return ErrorType.SYSTEM


def _bucket_fix(parsed: StorageUri, access: Access, source: str) -> str:
    b = parsed.bucket
    if parsed.scheme == "s3":
        ep = f" --endpoint-url {access.endpoint}" if "amazonaws.com" not in access.endpoint else ""
        return f"create bucket {b} (aws s3 mb s3://{b}{ep}) or fix `{source}`"
    if parsed.scheme == "az":
        return (
            f"create container {b} in account {parsed.account} (az storage container create -n {b}) "
            f"or fix `{source}`"
        )
    return f"create bucket {b} (gcloud storage buckets create gs://{b}) or fix `{source}`"


def _failure_fix(kind: ErrorType, access: Access, what: str) -> str:
    if kind is ErrorType.AUTHENTICATION:
        return f"{access.auth_fix} (the store rejected them for {what})"
    if kind is ErrorType.PERMISSION:
        return (
            f"grant the identity from {access.credential_source} permission to {what}, or use credentials "
            f"that have it"
        )
    if kind is ErrorType.NETWORK:
        return (
            f"is the endpoint {access.endpoint} up? Check it (from {access.endpoint_source}) and the network"
        )
    if kind is ErrorType.RESOURCE:
        return "the store is throttling already; reduce other load on it or expect throttled results"
    return f"check the store's logs for {what}; the client said so above"


def _check_list(
    label: str,
    parsed: StorageUri,
    backend: Backend,
    access: Access,
    root: RootPlan,
    checks: CheckList,
    tries: Tries,
) -> bool:
    word = _BUCKET_WORD[parsed.scheme]
    try:
        first = tries.call(lambda: _first(backend.list("", recursive=True)))
    except StorageError as exc:
        kind = classify(exc)
        if exc.kind is ErrorClass.NOT_FOUND or any(w in exc.message for w in _MISSING_BUCKET_WORDS):
            checks.error(
                f"{label}.bucket",
                f"{word} {parsed.bucket} does not exist at {access.endpoint}",
                ErrorType.CONFIGURATION,
                _bucket_fix(parsed, access, root.source),
                details={"error": exc.message[:500], "attempts": tries.last},
            )
        else:
            checks.error(
                f"{label}.list",
                f"LIST of {root.uri} failed ({exc.kind.value}){tries.note()}: {exc.message[:300]}",
                kind,
                _failure_fix(kind, access, f"list {word} {parsed.bucket}"),
                details={"error_class": exc.kind.value, "attempts": tries.last},
            )
        return False
    checks.success(f"{label}.bucket", f"{word} {parsed.bucket} exists")
    seen = f"first key {first[0]!r}" if first else "prefix is empty"
    checks.success(
        f"{label}.list",
        f"LIST (max 1) works: {seen}",
        details={"first_key": first[0] if first else None, "attempts": tries.last},
    )
    return True


def probe_write(
    label: str,
    backend: Backend,
    access: Access,
    root: RootPlan,
    checks: CheckList,
    tries: Tries | None = None,
) -> None:
    """PUT, GET (compare), DELETE and STAT-after-delete of one probe object; always deleted at the end."""
    tries = tries or Tries()
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    payload = os.urandom(PROBE_SIZE)
    written = deleted = False
    step = "put"
    uri = backend.uri_of(key)

    def delete() -> None:
        try:
            backend.delete(key)
        except StorageError as exc:
            if exc.kind is not ErrorClass.NOT_FOUND or tries.last == 1:
                raise  # not found on a retry: the try whose answer was lost did delete it

    try:
        tries.call(lambda: backend.put(key, payload))
        written = True
        checks.success(
            f"{label}.put",
            f"PUT of a {PROBE_SIZE}-byte probe object",
            details={"key": key, "attempts": tries.last},
        )
        step = "get"
        got = bytes(tries.call(lambda: backend.get(key)))
        if got != payload:
            checks.error(
                f"{label}.get",
                f"GET returned {len(got)} bytes that differ from the {PROBE_SIZE} written",
                ErrorType.SYSTEM,
                "the store or a proxy alters data: check its logs",
            )
        else:
            checks.success(f"{label}.get", "GET returned the probe's bytes", details={"attempts": tries.last})
        step = "delete"
        tries.call(delete)
        deleted = True
        delete_tries = tries.last
        try:
            tries.call(lambda: backend.stat(key))
            checks.warning(
                f"{label}.delete",
                "the probe object is still visible after DELETE",
                ErrorType.SYSTEM,
                "the store lists deleted objects for a while; results of DELETE "
                "workloads may count stale keys",
            )
        except StorageError as exc:
            if exc.kind is not ErrorClass.NOT_FOUND:
                raise
            checks.success(
                f"{label}.delete", "DELETE removed the probe object", details={"attempts": delete_tries}
            )
    except StorageError as exc:
        # A PUT cut off by a timeout or a dropped connection may still have landed: delete it too.
        written = written or exc.kind in (ErrorClass.TIMEOUT, ErrorClass.NETWORK)
        kind = classify(exc, permission_if_auth=step != "put")
        what = {"put": "write objects (PUT)", "get": "read objects (GET)", "delete": "delete objects"}[step]
        checks.error(
            f"{label}.{step}",
            f"{step.upper()} of probe {uri} failed ({exc.kind.value}){tries.note()}: {exc.message[:300]}",
            kind,
            _failure_fix(kind, access, what),
            details={"key": key, "error_class": exc.kind.value, "attempts": tries.last},
        )
    finally:
        if not deleted and written:
            _remove_probe(label, backend, key, uri, checks)


def _remove_probe(label: str, backend: Backend, key: str, uri: str, checks: CheckList) -> None:
    try:
        backend.delete(key)
    except StorageError as exc:
        if exc.kind is not ErrorClass.NOT_FOUND:
            checks.warning(
                f"{label}.cleanup",
                f"could not delete probe {uri}: {exc.message[:200]}",
                ErrorType.PERMISSION,
                f"delete {uri} by hand",
            )


def check_read_target(
    label: str,
    backend: Backend,
    read: ReadTarget,
    checks: CheckList,
    access: Access | None = None,
    tries: Tries | None = None,
) -> None:
    """STAT one object a GET/STAT op will read: the key itself, or the first match of a prefix or glob."""
    tries = tries or Tries()
    name = f"{label}.{read.op}_target"
    where = backend.uri_of(read.pattern)
    try:
        pattern = Pattern.parse(read.pattern)
    except ConfigError as exc:
        checks.error(name, exc.message, ErrorType.CONFIGURATION, f"fix `{read.source}`")
        return
    if read.prepared:
        checks.info(
            name,
            f"{read.op} path {read.pattern!r} is filled by this run's prepare; not checked now",
            endpoint=where,
        )
        return
    try:
        if pattern.kind == "exact":
            key: str | None = pattern.key
        else:
            key, exhausted = tries.call(lambda: _first_match(backend, pattern))
            if key is None:
                if exhausted:
                    checks.error(
                        name,
                        f"nothing matches {read.pattern!r} and no prepare creates it",
                        ErrorType.CONFIGURATION,
                        f"add `prepare.ensure_objects` for it or fix `{read.source}`",
                        endpoint=where,
                    )
                else:
                    checks.warning(
                        name,
                        f"none of the first {GLOB_SCAN_LIMIT} keys matches {read.pattern!r}",
                        ErrorType.CONFIGURATION,
                        f"check `{read.source}`; the run fails if nothing matches",
                        endpoint=where,
                    )
                return
        stat = tries.call(lambda: backend.stat(key))
    except StorageError as exc:
        if exc.kind is ErrorClass.NOT_FOUND:
            checks.error(
                name,
                f"{read.op} target {where} does not exist and no prepare creates it",
                ErrorType.CONFIGURATION,
                f"create it, add a `prepare` block, or fix `{read.source}`",
                endpoint=where,
            )
        else:
            kind = classify(exc, permission_if_auth=True)
            fix = _failure_fix(kind, access, "read objects") if access else f"check `{read.source}`"
            checks.error(
                name,
                f"STAT of {where} failed ({exc.kind.value}){tries.note()}: {exc.message[:300]}",
                kind,
                fix,
                endpoint=where,
                details={"attempts": tries.last},
            )
        return
    checks.success(
        name,
        f"STAT of {read.op} target {stat.key} works ({stat.size} bytes)",
        endpoint=where,
        details={"attempts": tries.last},
    )


def _first_match(backend: Backend, pattern: Pattern) -> tuple[str | None, bool]:
    """(first key matching, listing exhausted) looking at no more than GLOB_SCAN_LIMIT keys."""
    prefix = pattern.directory + "/" if pattern.directory else ""
    regex = pattern_regex(pattern.match) if pattern.kind in ("glob", "recursive") else None
    it = backend.list(prefix, recursive=pattern.kind == "recursive")
    try:
        for n, (key, _size) in enumerate(it):
            if n >= GLOB_SCAN_LIMIT:
                return None, False
            if key.endswith("/"):
                continue
            rest = key[len(prefix) :] if key.startswith(prefix) else key
            if regex is None or regex.match(rest):
                return key, True
        return None, True
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
