"""A bucket's real traffic, end to end: the S3 access-log fixture imports (every skipped line counted by
reason) and its op-log replays against SeaweedFS, leaving the objects its PUTs created with their sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.oplog.accessimport import import_report_path
from sbench.oplog.reader import read_rows
from tests import servers
from tests.oplog.fixtures import make_access_logs as fixture
from tests.storage.fixtures_s3 import hermetic_aws_env, ready_bucket, s3_admin_client


def test_an_imported_access_log_replays_against_seaweedfs(
    seaweedfs: servers.LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "prod.tsv.zst"
    assert (
        main(
            [
                "oplog",
                "import",
                "--format",
                "s3-access-log",
                str(fixture.LATER),
                str(fixture.EARLIER),
                "-o",
                str(log),
            ]
        )
        == 0
    )
    report = json.loads(import_report_path(log).read_text())
    skipped = report["skipped"] if "skipped" in report else report["totals"]["skipped"]
    assert skipped and all(isinstance(n, int) and n > 0 for n in skipped.values())  # counted by reason

    rows = list(read_rows(log))
    created: dict[str, int] = {}  # key -> size of what the traffic leaves behind
    for row in rows:
        key = row.file.removeprefix(f"{fixture.BUCKET}/")
        if row.error:
            continue
        if row.op == "PUT":
            created[key] = row.bytes
        elif row.op == "DELETE":
            created.pop(key, None)
    assert len(created) >= 10 and any(size > 8 * 1024 * 1024 for size in created.values())  # multipart

    hermetic_aws_env(monkeypatch, tmp_path)
    bucket = "sbench-replay-access"
    ready_bucket(seaweedfs, bucket)
    target = f"s3://127.0.0.1:{seaweedfs.port}/{bucket}/candidate/"
    results = tmp_path / "replayed"
    code = main(
        [
            "replay",
            "--op-log",
            str(log),
            "--target",
            target,
            "--speed",
            "200",
            "--continue-on-error",
            "--results-dir",
            str(results),
        ]
    )
    summary = json.loads((results / "summary.json").read_text())
    assert code in (0, 1), code  # the log's own 403/404/503 requests fail again against the candidate
    assert summary["load_model"]["ops_succeeded"] > 0
    client = s3_admin_client(seaweedfs)
    try:
        for key, size in created.items():
            assert client.head_object(Bucket=bucket, Key=f"candidate/{key}")["ContentLength"] == size, key
    finally:
        client.close()
