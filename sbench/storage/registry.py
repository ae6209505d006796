"""Scheme -> driver factory, imported only when a URI of that scheme is opened (as fsspec's registry does).

A plain file:// run must not pay for importing boto3, azure and google clients, and a machine without one of
those packages must still run everything else; so each entry is a "module:function" string, and a missing
package becomes a ConfigError that names what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from sbench.errors import ConfigError
from sbench.storage.base import Backend
from sbench.storage.options import BackendOptions
from sbench.storage.uri import StorageUri, parse_uri

Factory = Callable[[StorageUri, BackendOptions], Backend]

#: canonical scheme -> "module:function"; the function is a Factory: (parsed, options) -> Backend
_REGISTRY: dict[str, str] = {
    "file": "sbench.storage.file:open_file",
    "direct": "sbench.storage.direct:open_direct",
    "s3": "sbench.storage.cloud_open:open_s3",
    "az": "sbench.storage.cloud_open:open_azure",
    "gs": "sbench.storage.cloud_open:open_gcs",
    "null": "sbench.storage.null:open_null",
}

#: top-level import name -> the pip distribution that provides it
_PIP_NAMES: dict[str, str] = {
    "boto3": "boto3",
    "botocore": "boto3",
    "obstore": "obstore",
    "azure": "azure-storage-blob",
    "google": "google-cloud-storage",
    "hdrh": "hdrhistogram",
}


def register(scheme: str, target: str) -> None:
    """Add or replace the factory of a scheme ("package.module:function"); for plugins and tests."""
    if ":" not in target:
        raise ValueError(f"registry target {target!r} must be 'module:function'")
    _REGISTRY[scheme] = target


def known_schemes() -> list[str]:
    return sorted(_REGISTRY)


def open_backend(uri: str | StorageUri, options: BackendOptions | None = None) -> Backend:
    """Open the backend rooted at `uri`; ConfigError for a bad URI, an unbuilt driver or a missing package."""
    options = options or BackendOptions()
    parsed = uri if isinstance(uri, StorageUri) else parse_uri(uri, https=options.https)
    factory = _load_factory(parsed)
    try:
        return factory(parsed, options)
    except ModuleNotFoundError as exc:  # a driver importing its client library lazily, inside the factory
        raise _missing_package(parsed, exc) from exc


def _load_factory(parsed: StorageUri) -> Factory:
    target = _REGISTRY.get(parsed.scheme)
    if target is None:
        raise ConfigError(
            f"No storage driver is registered for {parsed.scheme}:// ({parsed.raw}).",
            hint=f"Registered schemes: {', '.join(known_schemes())}.",
        )
    module_name, func_name = target.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise _missing_package(parsed, exc) from exc
    factory = getattr(module, func_name, None)
    if factory is None:
        raise ConfigError(
            f"The {parsed.scheme}:// driver module {module_name} has no {func_name}(); this sbench build is "
            f"incomplete.",
        )
    return factory


def _missing_package(parsed: StorageUri, exc: ModuleNotFoundError) -> ConfigError:
    missing = exc.name or ""
    top = missing.split(".", 1)[0]
    if top == "sbench":
        return ConfigError(
            f"The {parsed.scheme}:// driver is not built in this version of sbench (module {missing} is "
            f"missing), so {parsed.raw} cannot be opened.",
            hint=f"Use one of the available schemes: {', '.join(_available_schemes())}.",
        )
    pip_name = _PIP_NAMES.get(top, top)
    return ConfigError(
        f"Opening {parsed.raw} needs the Python package {pip_name!r}, which is not installed "
        f"(import of {missing!r} failed).",
        hint=f"Install it into sbench's environment: pip install {pip_name}",
    )


def _available_schemes() -> list[str]:
    available = []
    for scheme, target in sorted(_REGISTRY.items()):
        if importlib.util.find_spec(target.split(":", 1)[0]) is not None:
            available.append(scheme)
    return available
