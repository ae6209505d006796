"""`sbench ping [CONFIG]`: reach every Ray node and every storage root of CONFIG; print round trips and the
nodes' clock offsets (sai3bench-ctl ping asked each agent for its version; on Ray the agents are where the
nodes are). Exit 0 when everything answered, 1 naming what did not, 2 for a bad config."""

from __future__ import annotations

import argparse
from pathlib import Path

from sbench.errors import EXIT_OK, RunFailed

DEFAULT_PROBES = 5


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ping",
        help="reach every Ray node and storage endpoint; print round trips and clock offsets",
        description="Probe every Ray node (round trip, clock offset against this host) and, with CONFIG, "
        "every storage root the config's agents use (read-only: connect and a one-key LIST, or a stat for "
        "local paths). Exit codes: 0 all answered, 1 something did not (named), 2 bad config.",
    )
    parser.add_argument("config", nargs="?", type=Path, help="workload YAML whose storage roots to probe")
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="the Ray cluster to probe (beats RAY_ADDRESS); without either, no nodes are probed",
    )
    parser.add_argument(
        "--probes", type=int, default=DEFAULT_PROBES, metavar="N", help="round trips per target"
    )
    parser.add_argument("--no-ray", action="store_true", help="probe only the storage roots")


def execute(args: argparse.Namespace) -> int:
    probes = max(1, min(int(args.probes), 1000))
    failed: list[str] = []
    if args.config is not None:
        failed += _storage(args.config, probes)
    if not args.no_ray:
        failed += _nodes(args.ray_address, probes)
    if failed:
        raise RunFailed(f"sbench ping: {len(failed)} target(s) did not answer: {'; '.join(failed)}")
    return EXIT_OK


def _storage(config_path: Path, probes: int) -> list[str]:
    from sbench.config import load_config
    from sbench.preflight.ping import ping_root, storage_roots

    loaded = load_config(config_path)
    failed = []
    print(f"storage roots of {config_path}:")
    for root, options in storage_roots(loaded.config):
        answer = ping_root(root, options, probes)
        print(f"  {answer.uri} ({answer.source}): {answer.describe()}", flush=True)
        if not answer.ok:
            failed.append(f"{answer.uri} ({answer.source}): {answer.error}")
    return failed


def _nodes(flag_address: str | None, probes: int) -> list[str]:
    import ray

    from sbench.cluster.connect import chosen_address, ray_connection

    if not ray.is_initialized() and chosen_address(flag_address) is None:
        print("Ray: no cluster named (--ray-address or RAY_ADDRESS), so no nodes were probed")
        return []
    from sbench.cluster.ping import ping_nodes

    failed = []
    with ray_connection(flag_address) as connection:
        print(f"Ray: {connection.describe()}")
        for node in ping_nodes(probes):
            print(f"  node {node.node_ip} ({node.node_id[:12]}): {node.describe()}", flush=True)
            if node.alive and not node.ok:
                failed.append(f"Ray node {node.node_ip}: {node.error}")
    return failed
