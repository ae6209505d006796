"""The registry's factories for cloud URIs: resolve settings and credentials once (s3.py, azure.py,
gcs.py), then open the chosen driver, `driver: sdk` (boto3, azure-storage-blob, google-cloud-storage) or
`auto`/`native` (obstore). The drivers are imported only here and only when chosen, so a run never imports
a client library it does not use, and the resolution modules stay leaves that both drivers of a cloud
import.
"""

from __future__ import annotations

import logging

from sbench.storage import azure, gcs, s3
from sbench.storage.base import Backend
from sbench.storage.options import BackendOptions, Driver
from sbench.storage.uri import StorageUri

log = logging.getLogger(__name__)


def open_s3(parsed: StorageUri, options: BackendOptions) -> Backend:
    """The Backend for an s3:// URI: `driver: sdk` uses boto3, `auto`/`native` obstore."""
    session = s3.botocore_session()
    settings = s3.resolve_settings(parsed, options, session)
    credentials = s3.resolve_credentials(session, settings)
    log.debug("s3 %s: endpoint %s, path_style=%s, credentials from %s, driver %s", settings.root_uri,
              settings.where, settings.path_style, getattr(credentials, "method", "?"), options.driver.value)
    if options.driver is Driver.SDK:
        from sbench.storage.s3_sdk import S3SdkBackend

        return S3SdkBackend(settings, options, session)
    from sbench.storage.s3_native import S3NativeBackend

    return S3NativeBackend(settings, options, credentials)


def open_azure(parsed: StorageUri, options: BackendOptions) -> Backend:
    """The Backend for an az:// URI: `driver: sdk` uses azure-storage-blob, `auto`/`native` obstore."""
    creds = azure.resolve_credentials(parsed, options)
    if options.driver is Driver.SDK:
        from sbench.storage.azure_sdk import AzureSdkBackend

        return AzureSdkBackend(parsed, creds, options)
    from sbench.storage.azure_native import AzureNativeBackend

    return AzureNativeBackend(parsed, creds, options)


def open_gcs(parsed: StorageUri, options: BackendOptions) -> Backend:
    """The Backend for a gs:// URI: `driver: sdk` uses google-cloud-storage, `auto`/`native` obstore."""
    creds = gcs.resolve_credentials(parsed, options)
    if options.driver is Driver.SDK:
        from sbench.storage.gcs_sdk import GcsSdkBackend

        return GcsSdkBackend(parsed, creds, options)
    from sbench.storage.gcs_native import GcsNativeBackend

    return GcsNativeBackend(parsed, creds, options)
