"""az:// URIs: resolve credentials and endpoint once (cloud_open then opens the sdk or native driver).

Credentials come only from what the user set, in this order: `AZURE_STORAGE_CONNECTION_STRING`, then
`AZURE_STORAGE_ACCOUNT_KEY` / `AZURE_STORAGE_KEY` (with `AZURE_STORAGE_ACCOUNT`, which must match the account
of the URI when set), then `AZURE_STORAGE_SAS_TOKEN`. There is deliberately no managed-identity or
`DefaultAzureCredential` fallback: that would query the instance metadata service behind the user's back,
and a benchmark that silently authenticates as "whatever the VM is" measures the wrong thing. With nothing
set, the run stops with a message naming the variables.

The endpoint is the account's blob service URL (Azurite: `http://HOST:PORT/ACCOUNT`). The first of these wins:
`BackendOptions.endpoint_url`, an endpoint in the URI (`az://HOST:PORT/ACCOUNT/CONTAINER`, path-style as
emulators expect), the `BlobEndpoint` of the connection string, `AZURE_STORAGE_ENDPOINT`, then
`https://ACCOUNT.blob.core.windows.net`.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sbench.errors import RunFailed
from sbench.storage.options import BackendOptions
from sbench.storage.uri import StorageUri

#: The variables a user can set, in the order they are looked at; named in every "no credentials" message.
CREDENTIAL_VARIABLES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_KEY)",
    "AZURE_STORAGE_SAS_TOKEN",
)
#: Azurite's development account; `UseDevelopmentStorage=true` in a connection string means exactly this.
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_ENDPOINT = "http://127.0.0.1:10000/devstoreaccount1"
_SAS_SIG_RE = re.compile(r"((?:^|[?&;\s])sig=)[^&\s'\"]+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AzureCredentials:
    """What both drivers need to reach one account. Secrets are excluded from repr so they never reach a
    log line or a result file by accident."""

    account: str
    endpoint: str
    #: Which variable the credential came from (for messages; never the value).
    source: str
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)

    @property
    def is_http(self) -> bool:
        return self.endpoint.startswith("http://")


def resolve_credentials(
    parsed: StorageUri, options: BackendOptions, environ: Mapping[str, str] | None = None
) -> AzureCredentials:
    """Credentials and endpoint for the account of `parsed`; RunFailed naming the variables when none is set
    or when the variables name another account than the URI."""
    env = os.environ if environ is None else environ
    account = parsed.account or ""
    conn_text = env.get("AZURE_STORAGE_CONNECTION_STRING", "").strip()
    key = (env.get("AZURE_STORAGE_ACCOUNT_KEY") or env.get("AZURE_STORAGE_KEY") or "").strip()
    sas = env.get("AZURE_STORAGE_SAS_TOKEN", "").strip().lstrip("?")
    conn_endpoint: str | None = None
    if conn_text:
        conn = parse_connection_string(conn_text)
        _check_account(parsed, conn.get("AccountName"), "the AccountName of AZURE_STORAGE_CONNECTION_STRING")
        key_value, sas_value = conn.get("AccountKey"), conn.get("SharedAccessSignature")
        if not key_value and not sas_value:
            raise RunFailed(
                f"AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature, so "
                f"{parsed.raw} cannot be authenticated.",
                hint="Use the connection string from the portal's 'Access keys' page, or set "
                "AZURE_STORAGE_SAS_TOKEN instead.",
            )
        conn_endpoint = conn.get("BlobEndpoint") or _endpoint_from_parts(account, conn)
        source = "AZURE_STORAGE_CONNECTION_STRING"
        key, sas = key_value or "", (sas_value or "").lstrip("?")
    elif key or sas:
        _check_account(parsed, env.get("AZURE_STORAGE_ACCOUNT"), "AZURE_STORAGE_ACCOUNT")
        source = "AZURE_STORAGE_SAS_TOKEN"
        if key:
            explicit = env.get("AZURE_STORAGE_ACCOUNT_KEY")
            source = "AZURE_STORAGE_ACCOUNT_KEY" if explicit else "AZURE_STORAGE_KEY"
    else:
        raise RunFailed(
            f"No Azure credentials found for {parsed.raw}.",
            hint="Set one of: " + "; ".join(CREDENTIAL_VARIABLES) + ". (sbench does not fall back to "
            "managed identity.) For Azurite, use its connection string with BlobEndpoint="
            "http://127.0.0.1:PORT/devstoreaccount1.",
        )
    if key:
        _check_key(key, source)
    endpoint = (
        options.endpoint_url
        or (f"{parsed.endpoint}/{account}" if parsed.endpoint else None)
        or conn_endpoint
        or env.get("AZURE_STORAGE_ENDPOINT")
        or f"https://{account}.blob.core.windows.net"
    )
    return AzureCredentials(
        account=account,
        endpoint=endpoint.rstrip("/"),
        source=source,
        account_key=key or None,
        sas_token=None if key else (sas or None),
    )


def redact(text: str) -> str:
    """Remove SAS signatures from a client message: transport errors quote the request URL, query included."""
    return _SAS_SIG_RE.sub(r"\1REDACTED", text)


def parse_connection_string(text: str) -> dict[str, str]:
    """`Key=Value;...` pairs of an Azure Storage connection string (values may contain `=`, as keys do).
    `UseDevelopmentStorage=true` expands to Azurite's well-known account on its default port."""
    pairs: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            pairs[name.strip()] = value.strip()
    if pairs.get("UseDevelopmentStorage", "").lower() == "true":
        dev = {"AccountName": DEV_ACCOUNT, "AccountKey": DEV_ACCOUNT_KEY, "BlobEndpoint": DEV_ENDPOINT}
        pairs = {**dev, **{k: v for k, v in pairs.items() if k != "UseDevelopmentStorage"}}
    if not pairs:
        raise RunFailed(
            "AZURE_STORAGE_CONNECTION_STRING is set but is not a connection string (no Key=Value pairs).",
            hint="Expected the form DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;"
            "EndpointSuffix=core.windows.net",
        )
    return pairs


def _endpoint_from_parts(account: str, conn: Mapping[str, str]) -> str | None:
    suffix = conn.get("EndpointSuffix")
    if not suffix:
        return None
    protocol = conn.get("DefaultEndpointsProtocol", "https")
    return f"{protocol}://{account}.blob.{suffix}"


def _check_key(key: str, source: str) -> None:
    """Account keys are base64; a truncated or mistyped one would otherwise fail on every request (sdk) or
    when the store is built (native) with a message that hides where the key came from."""
    try:
        base64.b64decode(key, validate=True)
    except ValueError:
        raise RunFailed(
            f"The Azure account key from {source} is not valid base64 (truncated or mistyped?).",
            hint="Copy the key again from the storage account's 'Access keys' page.",
        ) from None


def _check_account(parsed: StorageUri, named: str | None, where: str) -> None:
    if named and parsed.account and named != parsed.account:
        raise RunFailed(
            f"{parsed.raw} names the storage account {parsed.account!r}, but {where} is for account "
            f"{named!r}; the credentials would be rejected.",
            hint=f"Write the URI as az://{named}/{parsed.bucket}/..., or set the credentials of "
            f"{parsed.account!r}.",
        )
