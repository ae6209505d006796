"""The shared contract every backend and driver meets: file, direct, S3, Azure and GCS (sdk and native).

Each test runs once per case (see conftest.py); a case whose driver fixture is not defined is skipped with
"driver not built yet". Data is random, so a driver that returns the wrong bytes cannot pass by accident.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from sbench.cli import main
from sbench.storage.base import Backend, ErrorClass, StorageError
from tests.storage.fixtures_local import Seeder, put_many

MIB = 1024 * 1024
PAYLOAD = os.urandom(8 * MIB + 1)


def _require_put(seeder: Seeder) -> None:
    if seeder.put_skip_reason:
        pytest.skip(seeder.put_skip_reason)


def _kind(excinfo: pytest.ExceptionInfo[StorageError]) -> ErrorClass:
    return excinfo.value.kind


@pytest.mark.parametrize("size", [0, 1, 4096, 8 * MIB + 1], ids=["0B", "1B", "4KiB", "8MiB+1"])
def test_round_trip(backend: Backend, seeder: Seeder, size: int) -> None:
    data = PAYLOAD[:size]
    seeder.put(f"rt/obj-{size}", data)
    assert bytes(backend.get(f"rt/obj-{size}")) == data
    assert backend.stat(f"rt/obj-{size}").size == size


def test_put_replaces_object(backend: Backend, seeder: Seeder) -> None:
    _require_put(seeder)
    backend.put("over/k", PAYLOAD[:100])
    backend.put("over/k", memoryview(PAYLOAD)[100:150])  # drivers accept memoryviews (payload slices)
    assert bytes(backend.get("over/k")) == PAYLOAD[100:150]
    assert backend.stat("over/k").size == 50


def test_range_reads(backend: Backend, seeder: Seeder) -> None:
    size = 3 * MIB + 123
    data = PAYLOAD[:size]
    seeder.put("range/obj", data)
    for offset, length in [(0, 1), (1, 4096), (4095, 2), (MIB - 7, MIB + 9), (size - 10, 10), (0, size)]:
        got = bytes(backend.get_range("range/obj", offset, length))
        assert got == data[offset:offset + length], (offset, length)
    # A range running past the end returns the bytes that exist.
    assert bytes(backend.get_range("range/obj", size - 5, 100)) == data[size - 5:]


def test_get_missing_is_not_found(backend: Backend) -> None:
    with pytest.raises(StorageError) as excinfo:
        backend.get("missing/nothing-here")
    assert _kind(excinfo) is ErrorClass.NOT_FOUND


def test_stat_missing_is_not_found(backend: Backend) -> None:
    with pytest.raises(StorageError) as excinfo:
        backend.stat("missing/nothing-here")
    assert _kind(excinfo) is ErrorClass.NOT_FOUND
    assert "nothing-here" in str(excinfo.value)  # the message names what was missing


def test_delete(backend: Backend, seeder: Seeder) -> None:
    seeder.put("del/k", b"abc")
    backend.delete("del/k")
    with pytest.raises(StorageError) as excinfo:
        backend.stat("del/k")
    assert _kind(excinfo) is ErrorClass.NOT_FOUND


def test_delete_missing(backend: Backend) -> None:
    """Object stores answer 204 to a DELETE of a missing key; where the store can tell, it is not_found."""
    try:
        backend.delete("missing/never-written")
    except StorageError as exc:
        assert exc.kind is ErrorClass.NOT_FOUND
    else:
        assert not backend.has_directories, "file systems can tell a missing file: delete must say not_found"


#: The page the SDK drivers ask for in the listing test; the obstore drivers take the server's (1,000 on
#: SeaweedFS and fake-gcs-server; Azurite's default is 5,000, which this test does not reach).
SMALL_PAGE = 100
SERVER_PAGE = 1000
_PAGE_SETTINGS = {
    "s3-sdk": ("sbench.storage.s3_sdk", "_LIST_PAGE"),
    "azure-sdk": ("sbench.storage.azure_sdk", "PAGE_SIZE"),
    "gcs-sdk": ("sbench.storage.gcs_sdk", "PAGE_SIZE"),
}


@pytest.mark.slow  # on the obstore drivers, 1,030 PUTs and deletes take 2-6 s on the emulators
def test_listing_across_pages(
    backend: Backend, seeder: Seeder, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Just over one page, flat and nested, recursive and not (the shallow listing crosses a page too), with
    exact keys and sizes: no key lost or repeated at the page boundary. The SDK drivers list in pages of
    SMALL_PAGE here (the page size is their own request parameter), so a few hundred keys cross a page;
    the obstore drivers cannot choose theirs, so they get just over a server page."""
    page = SERVER_PAGE
    if case in _PAGE_SETTINGS:
        module, name = _PAGE_SETTINGS[case]
        monkeypatch.setattr(f"{module}.{name}", SMALL_PAGE)
        page = SMALL_PAGE
    flat = {f"l/obj-{i:05d}": i % 5 for i in range(page + 10)}
    nested = {f"l/d{i % 4}/obj-{i:05d}": i % 3 for i in range(page + 10, page + 30)}
    expected = flat | nested
    put_many(seeder.put, ((k, PAYLOAD[:n]) for k, n in expected.items()), threads=32)

    recursive = list(backend.list("l/", recursive=True))
    assert len(recursive) == len(expected)  # no duplicates across pages
    assert dict(recursive) == expected

    shallow = list(backend.list("l/", recursive=False))
    dirs = {k for k, _ in shallow if k.endswith("/")}
    assert dirs == {f"l/d{j}/" for j in range(4)}
    assert {k: n for k, n in shallow if not k.endswith("/")} == flat
    assert len(shallow) == len(flat) + 4

    assert dict(backend.list("l/d1/", recursive=True)) == {k: n for k, n in nested.items() if "/d1/" in k}
    assert list(backend.list("nothing-under-this/", recursive=True)) == []


def test_list_streams_lazily(backend: Backend, seeder: Seeder) -> None:
    """list() is an iterator: the first entry arrives without consuming the rest."""
    put_many(seeder.put, ((f"lazy/k{i:03d}", b"x") for i in range(20)))
    it = iter(backend.list("lazy/", recursive=True))
    first = next(it)
    assert first[0].startswith("lazy/k") and first[1] == 1
    assert len(list(it)) == 19


def test_directory_calls(backend: Backend, seeder: Seeder) -> None:
    """mkdir/rmdir are real on file systems and a no-op / prefix delete on object stores; both end empty."""
    backend.mkdir("tree/a/b")
    seeder.put("tree/a/b/f1", b"1")
    seeder.put("tree/a/f2", b"22")
    if backend.has_directories:
        assert ("tree/a/", 0) in list(backend.list("tree/", recursive=False))
    backend.rmdir("tree/a", recursive=True)
    assert list(backend.list("tree/", recursive=True)) == []


def test_uri_of_names_the_key(backend: Backend) -> None:
    assert backend.uri_of("x/y.dat").endswith("/x/y.dat")
    assert backend.uri_of("x/y.dat").startswith(backend.root_uri.rstrip("/"))


def test_async_calls(backend: Backend, seeder: Seeder) -> None:
    """Native drivers are driven by asyncio tasks in the engine: the async calls meet the same contract."""
    if not backend.is_async:
        pytest.skip(f"{type(backend).__name__} is a synchronous driver")

    async def scenario() -> None:
        if seeder.put_skip_reason:
            seeder.put("async/k", PAYLOAD[:5000])
        else:
            await backend.put_async("async/k", PAYLOAD[:5000])
        assert bytes(await backend.get_async("async/k")) == PAYLOAD[:5000]
        assert bytes(await backend.get_range_async("async/k", 10, 20)) == PAYLOAD[10:30]
        assert (await backend.stat_async("async/k")).size == 5000
        assert [k async for k, _ in backend.list_async("async/", recursive=True)] == ["async/k"]
        await backend.delete_async("async/k")
        with pytest.raises(StorageError) as excinfo:
            await backend.stat_async("async/k")
        assert _kind(excinfo) is ErrorClass.NOT_FOUND

    asyncio.run(scenario())


def test_wrong_credentials_are_auth_errors(badauth_backend: Backend) -> None:
    with pytest.raises(StorageError) as excinfo:
        badauth_backend.get("any/key")
    assert _kind(excinfo) is ErrorClass.AUTH
    with pytest.raises(StorageError) as excinfo:
        next(iter(badauth_backend.list("", recursive=True)), None)
    assert _kind(excinfo) is ErrorClass.AUTH


def test_stopped_server_is_network_error(stopped_backend: Backend) -> None:
    with pytest.raises(StorageError) as excinfo:
        stopped_backend.get("any/key")
    assert _kind(excinfo) is ErrorClass.NETWORK
    assert excinfo.value.retryable


def test_util_commands(
    backend: Backend, seeder: Seeder, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sbench util` on every backend and driver, against the case's own fresh prefix."""
    driver = case.split("-", 1)[1] if "-" in case else "auto"
    base = backend.root_uri.rstrip("/") + "/u/"

    def util(*argv: str) -> tuple[int, str, str]:
        code = main(["util", argv[0], "--driver", driver, *argv[1:]])
        out, err = capsys.readouterr()
        return code, out, err

    if seeder.put_skip_reason:
        for i in range(3):
            seeder.put(f"u/obj_{i:06d}.bin", PAYLOAD[:2048])
    else:
        code, out, err = util("put", "--uri", base + "obj_*.bin", "--objects", "3", "--object-size", "2KiB")
        assert code == 0, err
        assert "PUT 3 objects" in out
        assert len({bytes(backend.get(f"u/obj_{i:06d}.bin")) for i in range(3)}) == 3  # random, distinct
    code, out, err = util("health", "--uri", base)
    assert code == 0 and "OK – found 3 objects" in out, err
    code, out, _ = util("list", "--uri", base + "obj_00000[*")  # a pattern with a regex metacharacter
    assert code == 0 and out == ""
    code, out, _ = util("list", "--uri", base + "obj_*.bin")
    assert sorted(line.rsplit("/", 1)[-1] for line in out.split()) == [f"obj_{i:06d}.bin" for i in range(3)]
    code, out, _ = util("stat", "--uri", base + "obj_000001.bin")
    assert code == 0 and "size:  2048 bytes" in out
    code, out, err = util("get", "--uri", base, "--jobs", "2")
    assert code == 0 and "GET 3 objects, 6.00 KiB" in out, err
    code, out, err = util("delete", "--uri", base + "obj_*")
    assert code == 0 and "DELETE 3 objects" in out, err
    code, out, _ = util("health", "--uri", base)
    assert "OK – found 0 objects" in out
    code, _, err = util("stat", "--uri", base + "obj_000001.bin")
    assert code == 1 and "not_found" in err


@pytest.mark.parametrize("key", ["../escape/obj", "sub/../../escape/obj", "sub/../obj", ".."])
def test_a_key_with_dotdot_is_refused_never_joined(backend: Backend, key: str) -> None:
    """No key leaves its root: every driver refuses a `..` segment (also one that stays inside, since stores
    disagree on what it means) with OUTSIDE_ROOT, before any request or syscall that could follow it."""
    calls = [
        lambda: backend.put(key, b"x"),
        lambda: backend.get(key),
        lambda: backend.stat(key),
        lambda: backend.delete(key),
        lambda: list(backend.list(key.rsplit("/", 1)[0] + "/")),
    ]
    for call in calls:
        with pytest.raises(StorageError) as excinfo:
            call()
        assert _kind(excinfo) is ErrorClass.OUTSIDE_ROOT, excinfo.value
