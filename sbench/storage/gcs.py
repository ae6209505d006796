"""gs:// (and gcs://) URIs: resolve credentials and endpoint once (cloud_open then opens the sdk or native
driver).

Credentials, first match wins:
1. `STORAGE_EMULATOR_HOST` (fake-gcs-server and other emulators): anonymous; the variable is also the
   endpoint.
2. `GOOGLE_APPLICATION_CREDENTIALS`: a service-account (or authorized-user) JSON file.
3. Application Default Credentials written by `gcloud auth application-default login`
   (`$CLOUDSDK_CONFIG/application_default_credentials.json`, default `~/.config/gcloud/`).
The GCE metadata server is never asked: it would authenticate as "whatever VM this is" behind the user's back
(and it is traffic to 169.254.169.254). With nothing set, the run stops with a message naming the variables.

The endpoint (API base URL) is `BackendOptions.endpoint_url`, else an endpoint in the URI (`gs://HOST:PORT/bucket`),
else `STORAGE_EMULATOR_HOST`, else Google's default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sbench.errors import RunFailed
from sbench.storage.options import BackendOptions
from sbench.storage.uri import StorageUri

CREDENTIAL_VARIABLES = (
    "GOOGLE_APPLICATION_CREDENTIALS (path of a service-account JSON key)",
    "Application Default Credentials (gcloud auth application-default login)",
    "STORAGE_EMULATOR_HOST (for an emulator such as fake-gcs-server)",
)
#: Credential file types both drivers can use.
FILE_TYPES = ("service_account", "authorized_user")
#: Object operations never need a project; the SDK client still wants one and would otherwise go looking
#: for it (metadata server included).
PLACEHOLDER_PROJECT = "sbench-no-project"
#: GCS resumable upload chunks must be multiples of 256 KiB.
CHUNK_GRANULE = 256 * 1024
#: google-cloud-storage sends bodies up to this size in one request and larger ones as a resumable upload;
#: the limit is the SDK's own (`blob._MAX_MULTIPART_SIZE`), not a setting, so `multipart_threshold` cannot
#: move it on the sdk driver.
SDK_RESUMABLE_ABOVE = 8 * 1024 * 1024


def resumable_chunk(part_size: int) -> int:
    """The chunk the SDK driver uploads in for `multipart_part_size`: rounded down to 256 KiB (at least)."""
    return max(CHUNK_GRANULE, part_size // CHUNK_GRANULE * CHUNK_GRANULE)


@dataclass(frozen=True, slots=True)
class GcsCredentials:
    """Where the credentials are (never their content: nothing secret is held here) and where requests
    go."""

    #: "emulator" (anonymous), "service_account" or "authorized_user".
    kind: str
    #: The variable or file the credentials came from, for messages.
    source: str
    project: str
    endpoint: str | None = None
    credentials_file: str | None = None

    @property
    def is_http(self) -> bool:
        return bool(self.endpoint and self.endpoint.startswith("http://"))


def resolve_credentials(
    parsed: StorageUri, options: BackendOptions, environ: Mapping[str, str] | None = None
) -> GcsCredentials:
    """Credentials and endpoint for `parsed`; RunFailed naming the variables when nothing usable is set."""
    env = os.environ if environ is None else environ
    emulator = _with_scheme(env.get("STORAGE_EMULATOR_HOST", "").strip())
    endpoint = options.endpoint_url or parsed.endpoint or emulator or None
    project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or env.get("CLOUDSDK_CORE_PROJECT")
    if emulator:
        return GcsCredentials("emulator", "STORAGE_EMULATOR_HOST", project or PLACEHOLDER_PROJECT,
                              endpoint=endpoint.rstrip("/") if endpoint else None)
    path, source = _credentials_file(env)
    if path is None:
        raise RunFailed(
            f"No Google Cloud credentials found for {parsed.raw}.",
            hint="Set one of: " + "; ".join(CREDENTIAL_VARIABLES) + ". (sbench does not ask the GCE "
            "metadata server.)",
        )
    kind, file_project = _read_credentials_file(path, source)
    return GcsCredentials(
        kind,
        source,
        project or file_project or PLACEHOLDER_PROJECT,
        endpoint=endpoint.rstrip("/") if endpoint else None,
        credentials_file=str(path),
    )


def _with_scheme(host: str) -> str:
    """`STORAGE_EMULATOR_HOST` is often written `localhost:4443`; the clients need a URL."""
    if host and "://" not in host:
        return "http://" + host
    return host


def _credentials_file(env: Mapping[str, str]) -> tuple[Path | None, str]:
    explicit = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise RunFailed(
                f"GOOGLE_APPLICATION_CREDENTIALS points at {path}, which is not a readable file.",
                hint="Set it to the path of a service-account JSON key, or unset it.",
            )
        return path, "GOOGLE_APPLICATION_CREDENTIALS"
    config_dir = env.get("CLOUDSDK_CONFIG") or str(Path(env.get("HOME", "~")).expanduser() / ".config/gcloud")
    adc = Path(config_dir) / "application_default_credentials.json"
    if adc.is_file():
        return adc, f"Application Default Credentials ({adc})"
    return None, ""


def _read_credentials_file(path: Path, source: str) -> tuple[str, str | None]:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunFailed(
            f"The Google credentials file {path} (from {source}) cannot be read as JSON: {exc}.",
            hint="Download the service-account key again (JSON format) or fix the path.",
        ) from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind not in FILE_TYPES:
        raise RunFailed(
            f"The Google credentials file {path} (from {source}) has type {kind!r}; sbench supports "
            f"{' and '.join(FILE_TYPES)} files.",
            hint="Use a service-account JSON key (IAM > Service accounts > Keys) in "
            "GOOGLE_APPLICATION_CREDENTIALS.",
        )
    project = info.get("project_id") or info.get("quota_project_id")
    return kind, project
