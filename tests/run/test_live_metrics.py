"""`--metrics-port`: a real in-process run scraped over HTTP while it runs and as it closes; the counters
equal summary.json, the histograms count every op; a port in use or a bad host is exit 2 before any I/O."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.metrics.live import catalog
from sbench.metrics.live.openmetrics import MetricsServer
from tests.metrics.scrape import Sample, scrape, total
from tests.servers import free_port

CONFIG = """
target: "file://{root}/"
duration: 2s
concurrency: 2
prepare:
  ensure_objects:
    - count: 40
      size_spec: 4KiB
  cleanup: true
workload:
  - {{op: get, path: "", weight: 60}}
  - {{op: put, path: "up/", object_size: 2KiB, weight: 30}}
  - {{op: stat, path: "", weight: 10}}
"""


def _config(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    path = tmp_path / "w.yaml"
    path.write_text(CONFIG.format(root=root))
    return path


def test_metrics_port_serves_the_run_and_agrees_with_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    last: list[list[Sample]] = []
    close = MetricsServer.close

    def scrape_then_close(self: MetricsServer) -> None:
        last.append(scrape(url, openmetrics=True))  # the run is over: every stage has ended
        close(self)

    monkeypatch.setattr(MetricsServer, "close", scrape_then_close)
    results = tmp_path / "results"
    argv = ["run", str(_config(tmp_path)), "--results-dir", str(results), "--no-report"]
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(main([*argv, "--metrics-port", str(port)])))
    runner.start()
    live: list[Sample] = []
    deadline = time.monotonic() + 60
    while runner.is_alive() and time.monotonic() < deadline:  # a scrape while the workload runs
        try:
            samples = scrape(url, openmetrics=True)
        except OSError:
            samples = []
        running = total(samples, "sbench_stage_running", "stage", stage_type="execute")
        in_flight = total(samples, "sbench_in_flight_ops", "stage").get("execute", 0)
        if running.get("execute") == 1 and in_flight > 0:
            live = samples
            break
        time.sleep(0.2)
    runner.join(timeout=120)
    assert codes == [0]
    assert live, "no scrape showed the execute stage running with ops counted"

    (final,) = last
    summary = json.loads((results / "summary.json").read_text())
    run_id = summary["run"]["run_id"]
    for stage in summary["stages"]:
        ops = total(final, "sbench_ops_total", "op", stage=stage["name"], run_id=run_id)
        nbytes = total(final, "sbench_bytes_total", "op", stage=stage["name"], run_id=run_id)
        for op, figures in stage["operations"].items():
            assert ops[op] == figures["ops"], (stage["name"], op)
            assert nbytes[op] == figures["bytes"], (stage["name"], op)
            if figures["ops"]:  # the histogram counts every op, and its +Inf bucket is the count
                count = total(final, "sbench_op_latency_seconds_count", "op", stage=stage["name"])
                top = total(final, "sbench_op_latency_seconds_bucket", "op", stage=stage["name"], le="+Inf")
                assert count[op] == top[op] == figures["ops"]
    execute = next(s for s in summary["stages"] if s["type"] == "execute")
    assert all(execute["operations"][op]["ops"] > 0 for op in ("GET", "PUT", "META"))
    assert total(final, "sbench_stage_running", "stage")["execute"] == 0
    assert total(final, "sbench_stage_barrier", "status", stage="execute") == {"ok": 1}
    # the running scrape was a part of the final one, never more
    assert total(live, "sbench_ops_total", "op", stage="execute") != {}
    assert 0 < total(live, "sbench_in_flight_ops", "stage")["execute"] <= 2.5  # concurrency 2
    for op, n in total(live, "sbench_ops_total", "op", stage="execute").items():
        assert n <= execute["operations"][op]["ops"]
    names = {name for name, _, _ in final}
    assert names <= catalog.exported_series() | {"sbench_ops_created"}, names - catalog.exported_series()
    assert {"sbench_ops_total", "sbench_op_latency_seconds_bucket", "sbench_in_flight_ops"} <= names


def _run_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    results = tmp_path / "results"
    argv = ["run", str(_config(tmp_path)), "--results-dir", str(results), "--no-report", *flags]
    assert main(argv) == 2
    assert not results.exists()  # refused before anything was written, let alone any storage I/O
    assert list((tmp_path / "data").iterdir()) == []
    return capsys.readouterr().err


def test_a_port_in_use_is_a_usage_error_before_any_io(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _run_refused(tmp_path, capsys, "--metrics-port", str(port))
    assert f"--metrics-port {port}" in err and "cannot listen there" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--metrics-host", "no such host.invalid"), "does not resolve"),
        (("--metrics-host", "192.0.2.1"), "cannot listen there"),  # TEST-NET: not an address of this host
        ((), "the port must be 1-65535"),
    ],
)
def test_an_invalid_host_or_port_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], message: str
) -> None:
    port = "70000" if not flags else str(free_port())
    err = _run_refused(tmp_path, capsys, "--metrics-port", port, *flags)
    assert message in err and "--metrics-host" in err


def test_the_metrics_flags_reach_the_run_options() -> None:
    from sbench.cli import build_parser
    from sbench.commands.run import options_from_args

    parser = build_parser()
    _, default = options_from_args(parser.parse_args(["run", "w.yaml"]))
    assert (default.metrics_port, default.metrics_host, default.ray_metrics) == (None, "127.0.0.1", True)
    argv = ["run", "w.yaml", "--metrics-port", "9464", "--metrics-host", "0.0.0.0", "--no-ray-metrics"]
    _, options = options_from_args(parser.parse_args(argv))
    assert (options.metrics_port, options.metrics_host, options.ray_metrics) == (9464, "0.0.0.0", False)
