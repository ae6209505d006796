"""gs:// through obstore (`driver: native`, the default): GCSStore behind the shared ObstoreBackend.

Emulators get a dummy bearer token and the emulator as `base_url` (obstore would otherwise look for real
credentials, or ask the metadata server). Note that obstore writes through the GCS XML API (`PUT
/bucket/object`); fake-gcs-server implements only the JSON upload API, so native PUTs cannot be verified
against it (every one gets `400 invalid uploadType`); real GCS accepts them.
"""

from __future__ import annotations

from typing import Any

from obstore.store import GCSStore

from sbench.storage.gcs import GcsCredentials
from sbench.storage.obstore_base import NO_RETRIES, ObstoreBackend, client_options
from sbench.storage.options import BackendOptions
from sbench.storage.uri import StorageUri

#: Any non-empty token: emulators do not check it, and it keeps obstore from looking for real credentials.
EMULATOR_TOKEN = "sbench-emulator"


class GcsNativeBackend(ObstoreBackend):
    """GCS via obstore's GCSStore; keys are relative to `gs://bucket/prefix`."""

    scheme = "gs"

    def __init__(self, parsed: StorageUri, creds: GcsCredentials, options: BackendOptions) -> None:
        config: dict[str, Any] = {}
        if creds.kind == "emulator":
            config["bearer_token"] = EMULATOR_TOKEN
        elif creds.kind == "service_account":
            config["service_account"] = creds.credentials_file
        else:
            config["application_credentials"] = creds.credentials_file
        if creds.endpoint:
            config["base_url"] = creds.endpoint

        def make_store(timeout_s: float) -> GCSStore:
            return GCSStore(
                parsed.bucket,
                prefix=parsed.prefix.strip("/") or None,
                config=config,
                client_options=client_options(options, timeout_s, creds.is_http),
                retry_config=NO_RETRIES,
            )

        super().__init__(parsed.root, make_store, options)
