"""The file connector stays inside its folder unless told to follow links out."""

from __future__ import annotations

import pytest

from crm2erp.connectors import create_connector
from crm2erp.errors import ConfigError


@pytest.fixture
def folders(tmp_path):
    inside, outside = tmp_path / "drop", tmp_path / "private"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_text("id,name\n1,Private\n", encoding="utf-8")
    (inside / "accounts.csv").symlink_to(outside / "secret.csv")
    (inside / "real.csv").write_text("id,name\n7,Here\n", encoding="utf-8")
    (inside / "alias.csv").symlink_to(inside / "real.csv")   # a link inside is fine
    return inside, outside


def _rows(conn, stream):
    return [row for batch in conn.read(stream, None) for row in batch.rows]


def test_a_link_out_of_the_folder_is_refused_for_read_write_and_check(folders):
    inside, outside = folders
    conn = create_connector("file", {"path": str(inside)})
    with pytest.raises(ConfigError, match="outside the folder.*follow_symlinks"):
        _rows(conn, "accounts")
    with pytest.raises(ConfigError, match="outside the folder"):
        conn.upsert("accounts", [{"id": "2", "name": "Overwrite"}])
    with pytest.raises(ConfigError, match="outside the folder"):
        conn.check()
    assert (outside / "secret.csv").read_text(encoding="utf-8") == "id,name\n1,Private\n"
    assert [r["name"] for r in _rows(conn, "alias")] == ["Here"]


def test_follow_symlinks_true_reads_through_the_link(folders):
    inside, _ = folders
    conn = create_connector("file", {"path": str(inside), "follow_symlinks": True})
    assert [r["name"] for r in _rows(conn, "accounts")] == ["Private"]
