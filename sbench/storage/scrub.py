"""Remove credentials from storage error messages before they are kept anywhere (results, console, Ray).

Client libraries quote what they sent when a call fails: signed URLs (`X-Amz-Signature=`, Azure SAS `sig=`,
`X-Goog-Signature=`), `Authorization` headers, connection strings, proxy URLs with a user and password. An
error message becomes a result (STATUS.txt, summary.json, console_log.txt) and travels through Ray, so every
message sbench keeps passes through `scrub_message` first: query strings of URLs go, `key=value` pairs and
headers with a secret-looking name lose their value, AWS access key ids are masked, and the literal value of
every credential variable in this process's environment is replaced by its name. It runs once per error class
and interval, never on the per-op path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from sbench.storage.azure import redact as redact_sas

REDACTED = "REDACTED"
#: `scheme://host/path?query`: the query of a signed URL is the signature; the path stays for the user
_URL_QUERY_RE = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#'\"<>()]*)\?[^\s'\"<>#()]*", re.IGNORECASE)
#: urllib3 and friends quote the request target alone: "Max retries exceeded with url: /b/k?X-Amz-..."
_TARGET_QUERY_RE = re.compile(r"((?:url|path|target)\s*[:=]\s*/[^\s?'\"<>()]*)\?[^\s'\"<>()]*", re.I)
#: `user:password@` in a URL (proxies)
_USERINFO_RE = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@", re.IGNORECASE)
_SECRET_NAMES = (
    r"AccountKey|SharedAccessSignature|SharedAccessKey|sig|signature|X-Amz-Signature|X-Amz-Credential"
    r"|X-Amz-Security-Token|X-Goog-Signature|X-Goog-Credential|access_token|refresh_token|id_token"
    r"|client_secret|aws_secret_access_key|secret_access_key|secret_key|session_token|security_token"
    r"|password|passwd|token|secret|authorization|x-ms-copy-source-authorization"
)
#: `name=value`, `name: value`, `"name": "value"` with a secret-looking name
_AUTH_SCHEMES = r"Bearer|Basic|SharedKey|AWS4-HMAC-SHA256"
_PAIR_RE = re.compile(
    rf"(\b(?:{_SECRET_NAMES})[\"']?\s*[=:]\s*[\"']?)(?:(?:{_AUTH_SCHEMES})\s+)?[^\s;&,'\"}}]+", re.IGNORECASE
)
#: an Authorization value quoted without its header name
_SCHEME_RE = re.compile(rf"(\b(?:{_AUTH_SCHEMES})\s+)[^\s,;'\"]+")
_AWS_KEY_ID_RE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
#: environment variables whose values are credentials (by name; not those naming where a credential is), and
#: the shortest value worth masking
_CREDENTIAL_VAR_RE = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|CONNECTION_STRING|SAS|CREDENTIAL", re.I)
_LOCATION_VAR_RE = re.compile(r"_(?:FILE|PATH|DIR|URL|URI|ENDPOINT|HOST)$", re.I)
_MIN_SECRET_LEN = 8


def _env_secrets(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(value, name) of every credential-looking variable, longest value first (a key inside a connection
    string is then masked by the longer match first)."""
    found = [
        (value, name)
        for name, value in environ.items()
        if len(value) >= _MIN_SECRET_LEN
        and _CREDENTIAL_VAR_RE.search(name)
        and not _LOCATION_VAR_RE.search(name)
    ]
    return sorted(found, key=lambda item: -len(item[0]))


def _environ_now() -> dict[str, str]:
    """This process's environment, copied in one step: iterating `os.environ` while another thread sets a
    variable (a Ray task applying its forwarded environment, a test runner) raises KeyError midway, which
    would lose the very error message being scrubbed. The underlying dict's copy is atomic under the GIL."""
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):
        return dict(os.environ)
    decode = os.environ.decodekey if hasattr(os.environ, "decodekey") else os.fsdecode
    return {decode(k): os.environ.decodevalue(v) for k, v in data.copy().items()}


def scrub_message(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every credential it may quote replaced (see the module docstring)."""
    if not text:
        return text
    for value, name in _env_secrets(_environ_now() if environ is None else environ):
        if value in text:
            text = text.replace(value, f"<{name}>")
    text = redact_sas(text)
    text = _URL_QUERY_RE.sub(rf"\1?{REDACTED}", text)
    text = _TARGET_QUERY_RE.sub(rf"\1?{REDACTED}", text)
    text = _USERINFO_RE.sub(rf"\1{REDACTED}@", text)
    text = _PAIR_RE.sub(rf"\1{REDACTED}", text)
    text = _SCHEME_RE.sub(rf"\1{REDACTED}", text)
    return _AWS_KEY_ID_RE.sub(REDACTED, text)
