"""README's "sai3-bench keys and flags in sbench" table names every key and flag of sai3-bench.

The list of what sai3-bench has lives in the reference fact sheet (its section 1 tables); the README section
must carry a row for each name, so a user porting a sai3 config can look every key up. The extraction reads
the fact sheet's key tables: the first column's backticked names (`run`, `duration`, `ensure_objects[]`),
the `--flags` of the CLI table, and the key names in the columns headed Keys/Flags/Fields/YAML/Type (plus a
row's description when its key column says "as listed", e.g. the `DistributedConfig` keys). Values after a
colon (`enabled:false`) and type or function names (CamelCase, calls) are not keys and are dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REFERENCE = Path("/work/shared/spec/sai3-reference.md")
README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## sai3-bench keys and flags in sbench"

#: The reference's sections whose tables hold keys and flags (1.3 units, 1.12 preflight, 1.14/1.15 outputs
#: and 1.17 data generation describe behaviour, not keys).
KEY_SECTIONS = frozenset(
    {"1.1", "1.2", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "1.10", "1.11", "1.13", "1.16"}
)
KEY_HEADER = re.compile(r"key|flag|field|yaml|type", re.IGNORECASE)
DESCRIPTION_HEADER = re.compile(r"descr|meaning", re.IGNORECASE)
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-v)\b")
NAME_BEFORE_VALUE = re.compile(r"^([a-z_][a-z0-9_]*)\s*(?:\?|:|\(|$)")
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
KEY_PATH = re.compile(r"[a-z_][a-z0-9_]*(\[\d*\])?(\.[a-z_][a-z0-9_]*(\[\d*\])?)*(\.\*)?\??")
TABLE_RULE = re.compile(r"\|[-| :]+\|")


def _cells(line: str) -> list[str]:
    """A markdown table row's cells; `\\|` inside a cell is a literal bar, not a separator."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _leaf(path: str) -> str:
    """`distributed.agents[].kv_cache_dir` -> `kv_cache_dir`; `ssh.*` -> `ssh`; `ssh?` -> `ssh`."""
    return re.sub(r"\[\d*\]", "", path.strip()).removesuffix("?").removesuffix(".*").split(".")[-1]


def _names_in_cell(cell: str, *, flags: bool, lone: bool) -> set[str]:
    """Key names in one non-first cell: `{a:1, b?: x, c | d}` lists give a, b, c, d; a lone `x.y` gives y
    (only where `lone`: in a Type column a lone word is a value); `flags` also takes `--flags`."""
    out: set[str] = set()
    for tok in re.findall(r"`([^`]+)`", cell):
        if flags:
            out.update(FLAG.findall(tok))
        if "," in tok or ":" in tok:
            for piece in (p.strip() for p in re.split(r"[,{}\[\]]", tok)):
                if ":" not in piece and "|" in piece:
                    alternatives = [a.strip() for a in piece.split("|")]
                    if all(IDENTIFIER.fullmatch(a) for a in alternatives):
                        out.update(alternatives)
                elif match := NAME_BEFORE_VALUE.match(piece):
                    out.add(match.group(1))
        elif lone and KEY_PATH.fullmatch(tok):
            out.add(_leaf(tok))
    return {name for name in out if len(name) > 1}


def _first_column_names(cell: str) -> set[str]:
    """`ensure_objects[]` -> ensure_objects, `skip_verification: true` -> skip_verification, `util put`,
    `--remap`; `AgentConfig` or `validate_filesystem(...)` are type and function names, not keys."""
    out = set()
    for tok in re.findall(r"`([^`]+)`", cell):
        name = re.sub(r"\[\d*\]", "", tok).split(":")[0].strip()
        if re.fullmatch(r"[a-z0-9_\- ]+", name) and len(name) > 1:
            out.add(name)
    return out


def reference_names(text: str) -> set[str]:
    """Every key, flag and command named in the reference's key tables (section 1)."""
    found: set[str] = set()
    for block in re.split(r"^### ", text.split("\n## 2.")[0], flags=re.MULTILINE)[1:]:
        number = block.split(" ", 1)[0]
        if number not in KEY_SECTIONS:
            continue
        header: list[str] | None = None
        for line in block.splitlines():
            if not line.startswith("|"):
                header = None
                continue
            if TABLE_RULE.fullmatch(line.strip()):
                continue
            row = _cells(line)
            if header is None:
                header = row
                continue
            found |= _first_column_names(row[0])
            key_columns = [i for i, h in enumerate(header) if i and KEY_HEADER.search(h)]
            as_listed = any(i < len(row) and row[i].lower() == "as listed" for i in key_columns)
            for i, cell in enumerate(row[1 : len(header)], start=1):
                if i in key_columns or (as_listed and DESCRIPTION_HEADER.search(header[i])):
                    found |= _names_in_cell(cell, flags=number == "1.1", lone="type" not in header[i].lower())
    return found


def readme_names(text: str) -> set[str]:
    """Names in the first column of the README section's tables, each also by its leaf (`agents[].env`)."""
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    names: set[str] = set()
    for line in text[start : end if end != -1 else len(text)].splitlines():
        if not line.startswith("|") or TABLE_RULE.fullmatch(line.strip()):
            continue
        for tok in re.findall(r"`([^`]+)`", _cells(line)[0]):
            name = tok.strip().rstrip(":")
            names |= {name, _leaf(name)} if KEY_PATH.fullmatch(name) else {name}
    return names


def missing_from_readme(reference: str, readme: str) -> list[str]:
    return sorted(reference_names(reference) - readme_names(readme))


@pytest.fixture(scope="module")
def reference() -> str:
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} is not on this machine")
    return REFERENCE.read_text()


def test_extraction_finds_the_known_keys(reference: str) -> None:
    """The extraction reads every kind of table: flags, first-column keys, "as listed" rows, key lists."""
    names = reference_names(reference)
    for expected in (
        "--tsv-name",  # run flag, Flags column of 1.1
        "util put",  # command, first column
        "ensure_objects",  # `ensure_objects[]`
        "tree_creation_mode",  # DistributedConfig keys, description of an "as listed" row
        "listen_port",  # AgentConfig keys
        "retry_jitter_factor",  # `{a:1, b:2}` list in a Type column
        "h2_conn_window_mb",  # s3dlio_optimization list
        "channels_per_thread",  # `channels | channels_per_thread` in the autotune list
        "agent_barrier_timeout",  # PhaseBarrierConfig
        "key_prefix_shards",  # `prepare.key_prefix_shards` in a Keys column
    ):
        assert expected in names, expected
    values_and_types = (
        "AgentConfig", "multi_runtime", "enabled:false", "b", "besteffort", "DEFAULT_OP_TIMEOUT_SECS"
    )
    for not_a_key in values_and_types:
        assert not_a_key not in names, not_a_key
    assert len(names) > 200


def test_readme_table_lists_every_sai3_key_and_flag(reference: str) -> None:
    missing = missing_from_readme(reference, README.read_text())
    assert not missing, f"add a row to README's {SECTION!r} for: {', '.join(missing)}"


def test_a_deleted_row_is_caught(reference: str) -> None:
    """The check is not vacuous: removing one row from the section makes that name missing."""
    readme = README.read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `tree_creation_mode` |"))
    assert missing_from_readme(reference, readme.replace(row + "\n", "")) == ["tree_creation_mode"]
