"""No key leaves its root (issue 10 item 1), checked when the config is loaded: exit 2, key and line named.

The issue's own scenarios run through the real CLI (`python -m sbench run`) against a tmp-dir "victim" next
to the target, which must stay untouched; the other escapes (path_template, target_override, base_uri, full
URIs, symlinks) are checked through `sbench.cli.main`, which is what the CLI runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.config import load_config_text
from sbench.config.confinement import lexical_problems, symlink_problems
from sbench.errors import ConfigError
from tests.victim import assert_untouched


def _cli(config: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sbench", "run", str(config), "--results-dir", str(config.parent / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_issue_sibling_delete_is_refused_and_the_sibling_survives(layout: tuple[Path, Path]) -> None:
    bench, victim = layout
    config = bench.parent / "del.yaml"
    config.write_text(
        f'target: "file://{bench}/"\nduration: 1s\nconcurrency: 2\n'
        'workload:\n  - {op: delete, path: "../victim/", weight: 1}\n'
    )
    done = _cli(config)
    assert done.returncode == 2, done.stderr
    assert f"{config}:5: workload[0].path: '../victim/' contains a `..` segment" in done.stderr
    assert "Traceback" not in done.stderr
    assert_untouched(victim)


def test_issue_etc_style_climb_is_refused_for_put_and_delete(layout: tuple[Path, Path]) -> None:
    """`../../../../etc/` from a deep target: here the climb lands in the tmp-dir victim instead of /etc."""
    bench, victim = layout
    deep = bench / "a" / "b" / "c"
    deep.mkdir(parents=True)
    climb = "../" * 4 + "victim/"
    config = bench.parent / "climb.yaml"
    config.write_text(
        f'target: "file://{deep}/"\nduration: 1s\n'
        f'workload:\n  - {{op: put, path: "{climb}", object_size: 1KiB, weight: 1}}\n'
        f'  - {{op: delete, path: "{climb}", weight: 1}}\n'
    )
    done = _cli(config)
    assert done.returncode == 2, done.stderr
    assert "workload[0].path" in done.stderr and "workload[1].path" in done.stderr
    assert_untouched(victim)


def _load(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        load_config_text(text)
    return excinfo.value


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (
            'prepare:\n  ensure_objects:\n    - {base_uri: "file://BENCH/../victim/", count: 1}\n',
            "prepare.ensure_objects[0].base_uri",
        ),
        (
            'prepare:\n  ensure_objects:\n    - {base_uri: "file://VICTIM/", count: 1}\n',
            "prepare.ensure_objects[0].base_uri",
        ),
        (
            'distributed:\n  shared_filesystem: false\n  path_template: "../{id}/"\n'
            '  agents: [{address: "localhost:1"}]\n',
            "distributed.path_template",
        ),
        (
            "distributed:\n  shared_filesystem: false\n  agents:\n"
            '    - {address: "localhost:1", path_template: "x/../../victim/"}\n',
            "distributed.agents[0].path_template",
        ),
        (
            'distributed:\n  shared_filesystem: false\n  path_template: "{agent_id}/"\n'
            '  agents: [{address: "localhost:1", id: ".."}]\n',
            "distributed.agents[0].id",
        ),
        (
            "distributed:\n  shared_filesystem: true\n"
            '  agents: [{address: "localhost:1", target_override: "file://BENCH/../victim/"}]\n',
            "distributed.agents[0].target_override",
        ),
        (
            'multi_endpoint:\n  endpoints: ["file://BENCH/", "file://BENCH/x/../../victim/"]\n',
            "multi_endpoint.endpoints[1]",
        ),
    ],
)
def test_every_place_a_key_is_built_is_checked(layout: tuple[Path, Path], body: str, key: str) -> None:
    bench, victim = layout
    text = (
        f'target: "file://{bench}/"\nduration: 1s\nworkload:\n  - {{op: put, path: "up/", weight: 1}}\n'
        + body.replace("BENCH", str(bench)).replace("VICTIM", str(victim))
    )
    message = str(_load(text))
    assert f": {key}: " in message, message


def test_full_uri_op_paths_must_lie_under_the_target_or_an_endpoint(layout: tuple[Path, Path]) -> None:
    bench, victim = layout
    outside = _load(
        f'target: "file://{bench}/"\nworkload:\n  - {{op: delete, path: "file://{victim}/*", weight: 1}}\n'
    )
    assert "workload[0].path" in str(outside) and "is outside the run's storage root" in str(outside)
    (bench / "data").mkdir()
    (bench / "data" / "o").write_bytes(b"1")
    inside = load_config_text(
        f'target: "file://{bench}/"\nworkload:\n  - {{op: get, path: "file://{bench}/data/*", weight: 1}}\n'
    )
    assert lexical_problems(inside.config) == []
    endpoint = load_config_text(
        f'multi_endpoint:\n  endpoints: ["file://{bench}/", "file://{victim}/"]\n'
        f'workload:\n  - {{op: get, path: "file://{victim}/*", weight: 1}}\n'
    )
    assert lexical_problems(endpoint.config) == []  # under the second endpoint: inside a root


def test_dotdot_inside_the_root_is_refused_too() -> None:
    """`a/../b` stays inside on a file system but is a literal key part on object stores: refused, with the
    reason, so one config never means two different things."""
    err = _load('target: "s3://bucket/p/"\nworkload:\n  - {op: get, path: "a/../b/", weight: 1}\n')
    assert "workload[0].path: 'a/../b/' contains a `..` segment" in str(err)
    assert "object stores keep it as a literal key part" in str(err)


def test_a_symlink_out_of_the_target_is_refused_at_config_time(
    layout: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench, victim = layout
    (bench / "data").symlink_to(victim, target_is_directory=True)
    config = tmp_path / "link.yaml"
    config.write_text(
        f'target: "file://{bench}/"\nduration: 1s\n'
        'workload:\n  - {op: delete, path: "data/*", weight: 1}\n'
        '  - {op: put, path: "data/new/", object_size: 1KiB, weight: 1}\n'
    )
    assert main(["run", str(config), "--results-dir", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert f"{config}:4: workload[0].path: {bench}/data resolves to {victim} (through a symlink)" in err
    assert f"{config}:5: workload[1].path" in err
    assert_untouched(victim)


def test_a_prepare_base_uri_through_a_symlink_is_refused(layout: tuple[Path, Path]) -> None:
    bench, victim = layout
    (bench / "pool").symlink_to(victim, target_is_directory=True)
    loaded_text = (
        f'target: "file://{bench}/"\nprepare:\n  ensure_objects:\n    - {{base_uri: "file://{bench}/pool/", '
        'count: 2}\nworkload:\n  - {op: get, path: "pool/", weight: 1}\n'
    )
    err = _load(loaded_text)
    assert "prepare.ensure_objects[0].base_uri" in str(err) and "workload[0].path" in str(err)


def test_symlinks_inside_the_root_are_fine(layout: tuple[Path, Path]) -> None:
    bench, _ = layout
    (bench / "real").mkdir()
    (bench / "real" / "o").write_bytes(b"1")
    (bench / "alias").symlink_to(bench / "real", target_is_directory=True)
    loaded = load_config_text(
        f'target: "file://{bench}/"\nworkload:\n  - {{op: get, path: "alias/*", weight: 1}}\n'
    )
    assert symlink_problems(loaded.config) == []
