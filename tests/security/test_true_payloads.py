"""Dead letters keep the record as read, and a retry writes the true values."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from crm2erp.store import StateStore
from tests.security.project import NOTE, crm_table, erp_rows, make_project, run


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    from crm2erp.cli import output

    monkeypatch.setattr(output.console, "width", 1000)
    monkeypatch.setattr(output.err_console, "width", 1000)


@pytest.mark.parametrize("stored_copies", [False, True], ids=["re-read", "stored-copy"])
def test_retry_writes_business_text_that_looks_like_credentials_verbatim(
        tmp_path, capsys, stored_copies):
    p = make_project(tmp_path, [{"id": "A1", "name": "Acme", "email": "not-an-email",
                                 "note": NOTE}], stored_copies=stored_copies)
    code, out, err = run(capsys, *p["args"], "sync", "run", "accounts")
    assert code == 1, out + err                      # one dead letter
    store = StateStore.open(p["state"])
    [letter] = store.dead_letters("accounts")
    assert letter.payload["note"] == NOTE            # stored as read
    store.close()
    code, out, err = run(capsys, *p["args"], "dlq", "show", str(letter.id))
    assert code == 0 and json.dumps(NOTE) in out and "***" not in out

    if stored_copies:   # the source cannot be re-read by key: stop mapping the e-mail
        (p["project"] / "in.map.yaml").write_text(
            (p["project"] / "in.map.yaml").read_text().replace(
                "  email: {from: email, transforms: [email]}\n", ""))
    else:               # fix the data in the CRM: the retry re-reads it
        engine = sa.create_engine(p["crm_url"])
        with engine.begin() as conn:
            conn.execute(crm_table(sa.MetaData()).update().values(email="a1@example.com"))
        engine.dispose()
    code, out, err = run(capsys, *p["args"], "dlq", "retry", "--all")
    assert code == 0, out + err
    [customer] = erp_rows(p["erp_url"]).values()   # crm_ref is the canonical id
    assert customer["note"] == NOTE
    assert customer["email"] == (None if stored_copies else "a1@example.com")
    assert customer["name"] == "Acme"


def test_an_empty_source_key_is_a_dead_letter_not_an_identity(tmp_path, capsys):
    p = make_project(tmp_path, [{"id": "", "name": "No key", "email": "n@example.com"},
                                {"id": "A2", "name": "Keyed", "email": "k@example.com"}])
    code, out, err = run(capsys, *p["args"], "sync", "run", "accounts")
    assert code == 1, out + err
    assert [c["name"] for c in erp_rows(p["erp_url"]).values()] == ["Keyed"]
    store = StateStore.open(p["state"])
    [letter] = store.dead_letters("accounts")
    store.close()
    assert letter.stage == "read" and "key" in letter.error
    assert letter.payload["name"] == "No key"
