"""az:// through obstore (`driver: native`, the default): a Rust HTTP client with far less CPU per op than
azure-storage-blob, driven by asyncio tasks or by threads (sync calls release the GIL). Everything that does
not depend on the cloud is in obstore_base.ObstoreBackend (shared with gcs_native); this module only turns
Azure credentials into an AzureStore, and redacts them from error messages.
"""

from __future__ import annotations

from typing import Any

from obstore.store import AzureStore

from sbench.storage.azure import AzureCredentials, redact
from sbench.storage.obstore_base import NO_RETRIES, ObstoreBackend, client_options
from sbench.storage.options import BackendOptions
from sbench.storage.uri import StorageUri


class AzureNativeBackend(ObstoreBackend):
    """Blob storage via obstore's AzureStore; keys are relative to `az://ACCOUNT/CONTAINER/prefix`."""

    scheme = "az"

    def __init__(self, parsed: StorageUri, creds: AzureCredentials, options: BackendOptions) -> None:
        config: dict[str, Any] = {"account_name": creds.account, "endpoint": creds.endpoint}
        if creds.account_key:
            config.update(account_key=creds.account_key, credential_type="access_key")
        else:
            config.update(sas_key=creds.sas_token or "", credential_type="sas_token")

        def make_store(timeout_s: float) -> AzureStore:
            return AzureStore(
                parsed.bucket,
                prefix=parsed.prefix.strip("/") or None,
                config=config,
                client_options=client_options(options, timeout_s, creds.is_http),
                retry_config=NO_RETRIES,
            )

        super().__init__(parsed.root, make_store, options, scrub=redact)
