"""s3:// URIs: resolve endpoint, region, addressing and credentials once (cloud_open then opens a driver).

Both drivers start from the same `S3Settings`, so `driver: sdk` and `driver: native` talk to the same
place with the same identity. Resolution order (first match wins):

- endpoint: `BackendOptions.endpoint_url`, the URI's `HOST:PORT` authority (http unless `https`),
  `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `s3.endpoint_url` / `endpoint_url` / `services`
  section, else AWS itself for the region (`AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` skips env and profile);
- region: `BackendOptions.region`, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile, else us-east-1;
- addressing: `BackendOptions.path_style`, else path-style whenever an explicit endpoint is used (MinIO,
  SeaweedFS, Ceph expect it) and virtual-hosted style on AWS;
- credentials: botocore's chain (env, profile, SSO, assume-role, container, instance role). The native driver
  receives them explicitly, so obstore never goes looking for credentials (or the metadata service at
  169.254.169.254) on its own. With none found the run stops before the first request.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from sbench.errors import ConfigError, RunFailed
from sbench.storage.options import BackendOptions
from sbench.storage.uri import StorageUri

DEFAULT_REGION = "us-east-1"
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where and how both S3 drivers connect (never holds secrets)."""

    bucket: str
    #: "" or "a/b/": prepended to every backend key.
    key_prefix: str
    root_uri: str
    #: None means AWS's own endpoint for `region`.
    endpoint_url: str | None
    #: Which setting the endpoint came from, for messages.
    endpoint_source: str
    region: str
    path_style: bool

    @property
    def is_http(self) -> bool:
        return self.endpoint_url is not None and self.endpoint_url.startswith("http://")

    @property
    def where(self) -> str:
        """Endpoint description for error messages."""
        return f"{self.endpoint_url or 'AWS S3'} (from {self.endpoint_source}, region {self.region})"


def botocore_session():  # -> botocore.session.Session (botocore imported lazily: registry contract)
    """A botocore session on the profile named by AWS_PROFILE (or the default); ConfigError if unknown."""
    import botocore.exceptions
    import botocore.session

    session = botocore.session.get_session()
    try:
        session.get_scoped_config()
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigError(
            f"AWS profile {session.profile!r} is not defined in ~/.aws/config or ~/.aws/credentials ({exc}).",
            hint="Set AWS_PROFILE to an existing profile, or unset it to use the default credential chain.",
        ) from None
    return session


def resolve_settings(parsed: StorageUri, options: BackendOptions, session) -> S3Settings:
    """Endpoint, region and addressing style of an s3:// URI (see the module docstring for the order)."""
    endpoint, source = _resolve_endpoint(parsed, options, session)
    region = (options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or session.get_config_variable("region") or DEFAULT_REGION)
    path_style = options.path_style if options.path_style is not None else endpoint is not None
    if not path_style and endpoint is not None and (why := virtual_host_problem(endpoint)):
        raise ConfigError(
            f"backend_options.path_style: false cannot be used with the S3 endpoint {endpoint} (from "
            f"{source}): {why}.",
            hint="Set path_style: true, or use the endpoint's DNS name.",
        )
    return S3Settings(
        bucket=parsed.bucket,
        key_prefix=parsed.key_prefix,
        root_uri=parsed.root,
        endpoint_url=endpoint,
        endpoint_source=source,
        region=region,
        path_style=path_style,
    )


def virtual_host_problem(endpoint: str) -> str | None:
    """Why virtual-hosted addressing (the bucket as the first label of the host name) cannot reach
    `endpoint`, or None when it can: an IP address has no labels to add a bucket to (obstore even panics
    on it, and boto3 quietly falls back to path-style)."""
    host = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}").hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return f"virtual-hosted addressing puts the bucket into the host name, and {host} is an IP address"


def _resolve_endpoint(parsed: StorageUri, options: BackendOptions, session) -> tuple[str | None, str]:
    if options.endpoint_url:
        return _normalise_endpoint(options.endpoint_url, options.https, "endpoint_url"), "endpoint_url"
    if parsed.endpoint:
        endpoint = parsed.endpoint
        if options.https and endpoint.startswith("http://"):
            endpoint = "https://" + endpoint[len("http://"):]
        return endpoint, "the URI"
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None, "AWS default (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)"
    for name in ENDPOINT_VARIABLES:
        value = os.environ.get(name)
        if value:
            return _normalise_endpoint(value, options.https, name), name
    from_profile = _profile_endpoint(session)
    if from_profile:
        source = f"profile {session.profile or 'default'}"
        return _normalise_endpoint(from_profile, options.https, source), source
    return None, "AWS default"


def _profile_endpoint(session) -> str | None:
    """`endpoint_url` for S3 in the active profile: its `s3` sub-section, `services` section, or global."""
    scoped = session.get_scoped_config()
    s3_section = scoped.get("s3")
    if isinstance(s3_section, dict) and s3_section.get("endpoint_url"):
        return s3_section["endpoint_url"]
    services_name = scoped.get("services")
    if services_name:
        services = session.full_config.get("services", {}).get(services_name, {})
        s3_service = services.get("s3") if isinstance(services, dict) else None
        if isinstance(s3_service, dict) and s3_service.get("endpoint_url"):
            return s3_service["endpoint_url"]
    return scoped.get("endpoint_url")


def _normalise_endpoint(value: str, https: bool, source: str) -> str:
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = f"{'https' if https else 'http'}://{value}"
    scheme, _, rest = value.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise ConfigError(
            f"S3 endpoint {value!r} (from {source}) is not an http(s) URL.",
            hint="Write it as http://HOST:PORT or https://HOST[:PORT].",
        )
    return value


def resolve_credentials(session, settings: S3Settings):  # -> botocore.credentials.Credentials
    """The credentials botocore's chain finds; RunFailed naming what to set when there are none."""
    import botocore.exceptions

    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:  # broken profile, SSO token expired, bad process...
        raise RunFailed(
            f"AWS credentials for {settings.root_uri} could not be loaded: {exc}",
            hint="Fix the profile named by AWS_PROFILE (for SSO: aws sso login), or set "
                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
        ) from None
    if credentials is None:
        raise RunFailed(
            f"No AWS credentials found for {settings.root_uri} (endpoint {settings.where}).",
            hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
                 "credentials), or AWS_PROFILE to a profile in ~/.aws/credentials or ~/.aws/config.",
        )
    return credentials
