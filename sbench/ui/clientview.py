"""What each driver will actually use for a URI, in the client library's own terms, for the dry-run.

Built from the same options and the same rules the drivers apply (BackendOptions.pool_size, the S3
endpoint/region/addressing resolution of s3.py, gcs.resumable_chunk), so what it shows is what the run does.
Nothing here opens a connection; S3's resolution reads the environment and the AWS profile only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbench.config.units import format_duration, format_size
from sbench.errors import ConfigError
from sbench.storage import gcs, s3
from sbench.storage.options import BackendOptions, Driver
from sbench.storage.uri import StorageUri

_LIBRARY = {
    ("s3", True): "obstore S3Store",
    ("s3", False): "boto3 (one client per worker thread)",
    ("az", True): "obstore AzureStore",
    ("az", False): "azure-storage-blob",
    ("gs", True): "obstore GCSStore",
    ("gs", False): "google-cloud-storage",
}


@dataclass(frozen=True, slots=True)
class ClientView:
    """One driver's settings for one URI, each already worded in the library's terms."""

    library: str
    timeouts: str
    uploads: str
    pool: str
    addressing: str
    tls: str


def client_view(parsed: StorageUri, options: BackendOptions) -> ClientView:
    """The settings the chosen driver will open `parsed` with (a cloud URI)."""
    native = options.driver is not Driver.SDK
    request, connect = format_duration(options.request_timeout_s), format_duration(options.connect_timeout_s)
    if native:
        timeouts = f"timeout {request} (whole request), connect_timeout {connect}"
        pool = f"pool_max_idle_per_host {options.pool_size}"
        tls = "allow_invalid_certificates" if not options.verify_tls else "certificates checked"
    else:
        read = "timeout" if parsed.scheme == "gs" else "read_timeout"
        timeouts = f"{read} {request}, connect timeout {connect}"
        pool = f"{'max_pool_connections' if parsed.scheme == 's3' else 'pool_maxsize'} {options.pool_size}"
        tls = "verify=False" if not options.verify_tls else "certificates checked"
    return ClientView(
        library=_LIBRARY[(parsed.scheme, native)],
        timeouts=timeouts,
        uploads=_uploads(parsed.scheme, native, options),
        pool=pool,
        addressing=_addressing(parsed, options),
        tls=tls,
    )


def _uploads(scheme: str, native: bool, options: BackendOptions) -> str:
    threshold, part = format_size(options.multipart_threshold), format_size(options.multipart_part_size)
    if scheme == "gs" and not native:
        chunk = format_size(gcs.resumable_chunk(options.multipart_part_size))
        return f"resumable above {format_size(gcs.SDK_RESUMABLE_ABOVE)} (fixed by the SDK), chunks of {chunk}"
    if scheme == "az" and not native:
        return f"max_single_put_size {threshold}, max_block_size {part}"
    return f"multipart from {threshold}, parts of {part}"


def _addressing(parsed: StorageUri, options: BackendOptions) -> str:
    if parsed.scheme != "s3":
        return "-"
    try:
        settings = s3.resolve_settings(parsed, options, s3.botocore_session())
    except ConfigError as exc:
        return f"unresolved: {exc}"
    style = "path-style" if settings.path_style else "virtual-hosted"
    return f"{style}, {settings.where}"
