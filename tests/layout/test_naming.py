"""Names prepare, cleanup and PUTs use, and their parsers."""

from __future__ import annotations

from sbench.layout import naming


def test_prepared_names_round_trip() -> None:
    assert naming.prepared_key("prepared", 42) == "prepared-00000042.dat"
    assert naming.parse_prepared_key("data/deletable-00000007.dat") == ("deletable", 7)
    assert naming.parse_prepared_key("data/prepared-123456789.dat") == ("prepared", 123456789)
    assert naming.parse_prepared_key("data/prepared-1.dat") is None
    assert naming.parse_prepared_key("data/other-00000001.dat") is None


def test_tree_file_names_round_trip() -> None:
    assert naming.tree_file_name(5) == "file_00000005.dat"
    assert naming.parse_tree_file("a/b/file_00000005.dat") == 5
    assert naming.parse_tree_file("a/b/file_5.dat") is None


def test_put_keys_carry_run_agent_and_sequence() -> None:
    key = naming.put_key("20250101-120000-ab12", "agent_1.host", 3, 42)
    assert "_" not in naming.safe_token("agent_1.host")
    parsed = naming.parse_put_key("bucket/dir/" + key)
    assert parsed == naming.PutKey("20250101-120000-ab12", "agent-1-host", 3, 42)
    assert naming.is_run_put_key(key, "20250101-120000-ab12")
    assert not naming.is_run_put_key(key, "20250101-120000-ffff")
    assert not naming.is_run_put_key("prepared-00000001.dat", "20250101-120000-ab12")
    assert key.startswith(naming.put_key_prefix("20250101-120000-ab12", "agent_1.host"))


def test_run_ids_differ() -> None:
    assert naming.new_run_id() != naming.new_run_id()
