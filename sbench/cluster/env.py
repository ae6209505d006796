"""Which of the driver's environment variables travel to the agents and shard tasks, and how.

A user who runs `sbench run` with credentials in the shell expects every agent to use them, wherever Ray
places it (sai3 HEAD forwarded an allow-list for the same reason). Only storage-client variables go; the
node's own identity (SBENCH_AGENT_ID) stays with the node.

How they travel matters as much as which: Ray writes a task's or actor's `runtime_env` in full to
`runtime_env_agent.log` (0644, kept after the run) and shows it in its state API and dashboard, so secrets
never go there, nor into actor names, options or job metadata. They go as one small argument of the agent's
`configure` call and of every shard task (inlined in the call, held in memory only), wrapped in
`ForwardedEnv`, whose repr shows names only, so a log line, a traceback or an exception that formats its
arguments cannot print a value. The worker applies them before it builds any storage client; a task puts
the worker's environment back when it ends, because Ray reuses a worker process for later tasks.

The YAML adds to them (sai3's `distributed_env` for every agent, `agents[].env` for one; later wins): those
travel the same way, to the agent actor and to the shard tasks that work for it, and the results directory
records their names only (metadata.json).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sbench.config.models import AgentConfig, Config
from sbench.secretenv import ForwardedEnv

__all__ = ["ForwardedEnv", "agent_env", "capture", "forwarded_env"]

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


def capture(environ: Mapping[str, str] | None = None) -> ForwardedEnv:
    """The allow-listed variables of this process's environment (the driver's), now."""
    return ForwardedEnv(forwarded_env(environ))


def agent_env(base: ForwardedEnv, config: Config, entry: AgentConfig | None) -> ForwardedEnv:
    """What one agent (and the shard tasks that work for it) runs with: the driver's forwarded variables,
    then the config's `distributed_env`, then the agent entry's own `env`."""
    return base.adding(config.distributed_env, entry.env if entry is not None else {})
