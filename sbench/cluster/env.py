"""Which of the driver's environment variables travel to the agents and shard tasks.

A user who runs `sbench run` with credentials in the shell expects every agent to use them, wherever Ray
places it (sai3 HEAD forwarded an allow-list for the same reason). Only storage-client variables go; the
node's own identity (SBENCH_AGENT_ID) stays with the node. Values are never logged, only names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "GCS_", "GCLOUD_", "CLOUDSDK_")
NAMES = frozenset(
    {
        "STORAGE_EMULATOR_HOST",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
    }
)
#: set per node on purpose, never copied from the driver
NODE_LOCAL = frozenset({"SBENCH_AGENT_ID"})


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed variables of the driver's environment."""
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in environ.items()
        if name not in NODE_LOCAL and (name in NAMES or name.startswith(PREFIXES))
    }


def runtime_env(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, str]] | None:
    """A Ray runtime_env carrying the forwarded variables, or None when there is nothing to forward."""
    env = forwarded_env(environ)
    return {"env_vars": env} if env else None
