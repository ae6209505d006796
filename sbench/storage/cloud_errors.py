"""Classify cloud-client failures into ErrorClass, shared by the S3, Azure and GCS drivers.

Every cloud speaks HTTP, so the decision is the same everywhere: a service error code when the store sent one
(`SlowDown`, `ServerBusy`, `InvalidAccessKeyId`...), else the HTTP status, else the transport failure
(refused/reset/DNS -> network, timeouts -> timeout). The SDK drivers feed in the status and code their client
parsed; the native (obstore) drivers hand over the exception, whose text carries the status, the body and the
transport error kind. Classification runs only on failures, never on the per-op hot path.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from sbench.storage.base import ErrorClass, StorageError

#: Service error codes (S3, Azure, GCS spellings) that mean "slow down and retry".
THROTTLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "TooManyRequests", "TooManyRequestsException", "RequestThrottled", "ServerBusy", "OperationTimedOutBusy",
    "EgressIsOverAccountLimit", "IngressIsOverAccountLimit", "TpsLimitExceeded", "rateLimitExceeded",
    "userRateLimitExceeded", "BandwidthLimitExceeded", "ServiceUnavailable",
})
#: Service error codes that mean the credentials are wrong, expired or not allowed.
AUTH_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AllAccessDisabled", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "InvalidSecurity", "AuthorizationFailure",
    "AuthenticationFailed", "AuthorizationPermissionMismatch", "AuthorizationProtocolMismatch",
    "InsufficientAccountPermissions", "AccountIsDisabled", "Unauthorized", "Forbidden",
    "InvalidClientTokenId", "UnrecognizedClientException", "AccessDeniedException",
})
#: Service error codes that mean the object, bucket or container does not exist.
NOT_FOUND_CODES = frozenset({
    "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload", "NoSuchVersion", "BlobNotFound",
    "ContainerNotFound", "ResourceNotFound", "PathNotFound",
})
#: Service error codes that mean the server gave up waiting on the client (or itself).
TIMEOUT_CODES = frozenset({
    "RequestTimeout", "RequestTimeoutException", "OperationTimedOut", "RequestTimeTooSkewed",
})

_STATUS_CLASSES: dict[int, ErrorClass] = {
    401: ErrorClass.AUTH,
    403: ErrorClass.AUTH,
    404: ErrorClass.NOT_FOUND,
    408: ErrorClass.TIMEOUT,
    429: ErrorClass.THROTTLED,
    503: ErrorClass.THROTTLED,
    504: ErrorClass.TIMEOUT,
}


_CODE_CLASSES: dict[str, ErrorClass] = {
    code: kind
    for kind, codes in (
        (ErrorClass.TIMEOUT, TIMEOUT_CODES),
        (ErrorClass.NOT_FOUND, NOT_FOUND_CODES),
        (ErrorClass.AUTH, AUTH_CODES),
        (ErrorClass.THROTTLED, THROTTLE_CODES),
    )
    for code in codes
}
# A clock problem the user must fix, like bad credentials (the service words it as a timeout).
_CODE_CLASSES["RequestTimeTooSkewed"] = ErrorClass.AUTH


def classify_code(code: str | None) -> ErrorClass | None:
    """The class a service error code names, or None when the code says nothing specific."""
    return _CODE_CLASSES.get(code) if code else None


def classify_status(status: int | None, code: str | None = None) -> ErrorClass:
    """Class of an HTTP error response: the service code wins (a 503 SlowDown and a 400 RequestTimeout are
    both told apart by it), then the status; anything else is OTHER."""
    by_code = classify_code(code)
    if by_code is not None:
        return by_code
    if status is None:
        return ErrorClass.OTHER
    return _STATUS_CLASSES.get(status, ErrorClass.OTHER)


def classify_transport(exc: BaseException) -> ErrorClass | None:
    """NETWORK or TIMEOUT for Python socket-level failures anywhere in the exception's cause chain, else None.

    Works for any client built on sockets (urllib3, requests, aiohttp): their wrappers keep the OSError as
    `__cause__`/`__context__` or in `args`.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, TimeoutError | socket.timeout):
            return ErrorClass.TIMEOUT
        if isinstance(cur, ConnectionError | socket.gaierror | socket.herror):
            return ErrorClass.NETWORK
        todo.extend(c for c in (cur.__cause__, cur.__context__) if c is not None)
        todo.extend(a for a in cur.args if isinstance(a, BaseException))
    return None


# --- obstore (object_store / reqwest) errors ---------------------------------------------------------------
# Their text is "<summary>\n\nDebug source:\n<Rust debug tree>". The summary carries
# "status code: 503 ...: <body>"; the tree carries `status: 503`,
# `HttpError { kind: Connect|Timeout|Interrupted|... }` and the OS error.
_OBSTORE_STATUS_RE = re.compile(r"status code: (\d{3})|\bstatus: (\d{3})\b")
_XML_CODE_RE = re.compile(r"<Code>([A-Za-z]+)</Code>")
_JSON_CODE_RE = re.compile(r'\\?"(?:code|reason)\\?"\s*:\s*\\?"([A-Za-z]+)\\?"')
_HTTP_KIND_RE = re.compile(r"HttpError \{\s*kind: (\w+)")
_OS_DETAIL_RE = re.compile(r'(?:message|error): "([^"]+)"')
_NETWORK_KINDS = frozenset({"Connect", "Interrupted", "Request", "Decode"})
_NETWORK_WORDS = ("connection refused", "connection reset", "broken pipe", "dns error",
                  "failed to lookup address", "connection closed", "network is unreachable")


def obstore_summary(exc: BaseException) -> str:
    """The user-facing part of an obstore message (its Rust debug tree dropped), with the root OS error
    appended when the summary only says "error sending request"."""
    text = str(exc)
    summary, _, debug = text.partition("\n\nDebug source:")
    summary = summary.strip()
    details = _OS_DETAIL_RE.findall(debug)
    if details and details[-1] not in summary:
        summary = f"{summary} ({details[-1]})"
    return summary


def obstore_status(exc: BaseException) -> int | None:
    """The HTTP status an obstore error carries, if the server answered at all."""
    match = _OBSTORE_STATUS_RE.search(str(exc))
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


def obstore_past_end(exc: BaseException) -> bool:
    """True when a ranged read failed only because it starts at or after the end of the object (HTTP 416,
    or object_store's own check when it already knows the size); drivers turn that into an empty read, as
    pread at EOF does, so every backend answers such a read alike."""
    if obstore_status(exc) == 416:
        return True
    text = str(exc)
    return "InvalidRange" in text or "StartTooLarge" in text


def classify_obstore(exc: BaseException) -> ErrorClass:
    """Class of any exception raised by obstore (all stores: S3, Azure, GCS, HTTP)."""
    if isinstance(exc, FileNotFoundError):
        return ErrorClass.NOT_FOUND
    text = str(exc)
    code_match = _XML_CODE_RE.search(text) or _JSON_CODE_RE.search(text)
    status = obstore_status(exc)
    if status is not None or code_match is not None:
        kind = classify_status(status, code_match.group(1) if code_match else None)
        if kind is not ErrorClass.OTHER:
            return kind
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError  # only native drivers get here

    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        return ErrorClass.AUTH
    if status is not None:
        return ErrorClass.OTHER
    kind_match = _HTTP_KIND_RE.search(text)
    lowered = text.lower()
    if (kind_match and kind_match.group(1) == "Timeout") or "timedout" in lowered or "timed out" in lowered:
        return ErrorClass.TIMEOUT
    if (kind_match and kind_match.group(1) in _NETWORK_KINDS) or any(w in lowered for w in _NETWORK_WORDS):
        return ErrorClass.NETWORK
    transport = classify_transport(exc)
    return transport if transport is not None else ErrorClass.OTHER


def obstore_error(
    exc: BaseException, uri: str | None = None, scrub: Callable[[str], str] = str
) -> StorageError:
    """A StorageError for an obstore failure: classified, with the store's own message (minus the Rust
    debug dump) kept for the user; `scrub` removes what must not be shown (Azure SAS tokens in URLs)."""
    return StorageError(classify_obstore(exc), scrub(obstore_summary(exc)), uri=uri)
