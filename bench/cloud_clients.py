"""Client cost per Azure Blob and GCS operation: sbench's drivers against bare loops of the libraries below.

What it does: starts its own Azurite and fake-gcs-server (tests/servers.py) on 127.0.0.1, then drives 4 KiB
operations with each client in turn, `--concurrency` in flight (threads for the SDK clients, asyncio tasks for
obstore), `--ops` ops per round, over `--rounds` interleaved rounds (so drifting load on a shared machine hits
every client alike). Each op is two requests: a PUT then a GET of one key, except for the GCS native pair,
which does two GETs (fake-gcs-server cannot take obstore's XML-API PUTs, see ENVIRONMENT.md).

What it measures, per client: client CPU µs per request, `time.process_time()` of this process (all threads,
obstore's Rust runtime included) over the measured window divided by the requests completed; and requests/s.
The servers run in other processes, so their CPU is not in the figure. Bare loops use each library the way an
application would (SDK defaults apart from retries, which are off everywhere as in sbench).

The ratios printed last are what matter (sbench driver CPU per op / bare loop CPU per op); absolute figures
depend on the machine and on what else runs on it. Run it inside the loopback-only namespace:

    scripts/netns-run .venv/bin/python bench/cloud_clients.py [--ops 600] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sbench.storage.options import BackendOptions, Driver  # noqa: E402
from sbench.storage.registry import open_backend  # noqa: E402
from tests import servers  # noqa: E402

CONTAINER = BUCKET = "sbench-bench"
KEYS = 200
DATA = os.urandom(4096)

SyncOp = Callable[[int], int]
AsyncOp = Callable[[int], Awaitable[int]]


def run_threads(op: SyncOp, n: int, concurrency: int) -> tuple[float, float, int]:
    """(wall s, cpu s, requests) of `n` calls of op(i) on `concurrency` threads."""
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(op, range(min(n, 2 * concurrency))))  # warm-up: clients, connections
        wall, cpu = time.perf_counter(), time.process_time()
        requests = sum(pool.map(op, range(n)))
        return time.perf_counter() - wall, time.process_time() - cpu, requests


def run_tasks(op: AsyncOp, n: int, concurrency: int) -> tuple[float, float, int]:
    """(wall s, cpu s, requests) of `n` awaits of op(i), `concurrency` at a time."""

    async def batch(count: int) -> int:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> int:
            async with gate:
                return await op(i)

        return sum(await asyncio.gather(*(one(i) for i in range(count))))

    async def main() -> tuple[float, float, int]:
        await batch(min(n, 2 * concurrency))
        wall, cpu = time.perf_counter(), time.process_time()
        requests = await batch(n)
        return time.perf_counter() - wall, time.process_time() - cpu, requests

    return asyncio.run(main())


def azure_clients(azurite: servers.LocalServer, concurrency: int) -> dict[str, Callable[[int], tuple]]:
    import obstore
    from azure.storage.blob import ContainerClient
    from obstore.store import AzureStore

    conn = servers.azurite_connection_string(azurite.port)
    bare = ContainerClient.from_connection_string(conn, CONTAINER, retry_total=0)
    bare.create_container()
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = conn
    options = BackendOptions(concurrency=concurrency)
    sdk = open_backend(f"az://{servers.AZURITE_ACCOUNT}/{CONTAINER}/sdk/",
                       BackendOptions(driver=Driver.SDK, concurrency=concurrency))
    native = open_backend(f"az://{servers.AZURITE_ACCOUNT}/{CONTAINER}/native/", options)
    endpoint = f"{azurite.endpoint}/{servers.AZURITE_ACCOUNT}"
    store = AzureStore(CONTAINER, prefix="bare-native", account_name=servers.AZURITE_ACCOUNT,
                       account_key=servers.AZURITE_KEY, endpoint=endpoint,
                       client_options={"allow_http": True}, retry_config={"max_retries": 0})

    def bare_sdk(i: int) -> int:
        key = f"bare-sdk/k{i % KEYS}"
        bare.upload_blob(key, DATA, overwrite=True)
        bare.download_blob(key).readall()
        return 2

    def sbench_sdk(i: int) -> int:
        sdk.put(f"k{i % KEYS}", DATA)
        sdk.get(f"k{i % KEYS}")
        return 2

    async def bare_obstore(i: int) -> int:
        await obstore.put_async(store, f"k{i % KEYS}", DATA)
        await (await obstore.get_async(store, f"k{i % KEYS}")).bytes_async()
        return 2

    async def sbench_native(i: int) -> int:
        await native.put_async(f"k{i % KEYS}", DATA)
        await native.get_async(f"k{i % KEYS}")
        return 2

    return {
        "azure: bare azure-storage-blob": lambda n: run_threads(bare_sdk, n, concurrency),
        "azure: sbench sdk driver": lambda n: run_threads(sbench_sdk, n, concurrency),
        "azure: bare obstore": lambda n: run_tasks(bare_obstore, n, concurrency),
        "azure: sbench native driver": lambda n: run_tasks(sbench_native, n, concurrency),
    }


def gcs_clients(fake_gcs: servers.LocalServer, concurrency: int) -> dict[str, Callable[[int], tuple]]:
    import obstore
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from obstore.store import GCSStore

    client = storage.Client(project="bench", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": fake_gcs.endpoint})
    bucket = client.create_bucket(BUCKET)
    for i in range(KEYS):  # objects the GET-only native loops read
        bucket.blob(f"seed/k{i}").upload_from_string(DATA)
    os.environ["STORAGE_EMULATOR_HOST"] = fake_gcs.endpoint
    sdk = open_backend(f"gs://{BUCKET}/sdk/", BackendOptions(driver=Driver.SDK, concurrency=concurrency))
    native = open_backend(f"gs://{BUCKET}/seed/", BackendOptions(concurrency=concurrency))
    store = GCSStore(BUCKET, prefix="seed", config={"bearer_token": "x", "base_url": fake_gcs.endpoint},
                     client_options={"allow_http": True}, retry_config={"max_retries": 0})

    def bare_sdk(i: int) -> int:
        blob = bucket.blob(f"bare-sdk/k{i % KEYS}")
        blob.upload_from_string(DATA, retry=None)
        blob.download_as_bytes(retry=None)
        return 2

    def sbench_sdk(i: int) -> int:
        sdk.put(f"k{i % KEYS}", DATA)
        sdk.get(f"k{i % KEYS}")
        return 2

    async def bare_obstore(i: int) -> int:  # two GETs per op: as many requests per round as the pairs
        await (await obstore.get_async(store, f"k{i % KEYS}")).bytes_async()
        await (await obstore.get_async(store, f"k{(i + 1) % KEYS}")).bytes_async()
        return 2

    async def sbench_native(i: int) -> int:
        await native.get_async(f"k{i % KEYS}")
        await native.get_async(f"k{(i + 1) % KEYS}")
        return 2

    return {
        "gcs: bare google-cloud-storage": lambda n: run_threads(bare_sdk, n, concurrency),
        "gcs: sbench sdk driver": lambda n: run_threads(sbench_sdk, n, concurrency),
        "gcs: bare obstore (GET only)": lambda n: run_tasks(bare_obstore, n, concurrency),
        "gcs: sbench native driver (GET only)": lambda n: run_tasks(sbench_native, n, concurrency),
    }


RATIOS = [
    ("azure: sbench sdk driver", "azure: bare azure-storage-blob"),
    ("azure: sbench native driver", "azure: bare obstore"),
    ("gcs: sbench sdk driver", "gcs: bare google-cloud-storage"),
    ("gcs: sbench native driver (GET only)", "gcs: bare obstore (GET only)"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=600, help="operations (two requests each) per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sbench-cloud-bench-"))
    azurite, fake_gcs = servers.start_azurite(work / "azurite"), servers.start_fake_gcs(work / "fake-gcs")
    try:
        clients = azure_clients(azurite, args.concurrency) | gcs_clients(fake_gcs, args.concurrency)
        cpu_per_op: dict[str, list[float]] = {name: [] for name in clients}
        rate: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, run in clients.items():
                wall, cpu, requests = run(args.ops)
                cpu_per_op[name].append(cpu / requests * 1e6)
                rate[name].append(requests / wall)
    finally:
        azurite.stop()
        fake_gcs.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'client':40s} {'requests/s':>11s} {'CPU us/request':>15s}   (medians of {args.rounds} rounds)")
    for name in clients:
        print(f"{name:40s} {statistics.median(rate[name]):11.0f} {statistics.median(cpu_per_op[name]):15.0f}")
    print()
    for driver, bare in RATIOS:
        ratio = statistics.median(cpu_per_op[driver]) / statistics.median(cpu_per_op[bare])
        print(f"CPU per request, {driver} / {bare}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
