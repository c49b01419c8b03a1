"""SAP S/4HANA connector protocol details, against the loopback emulator.

CSRF tokens, etags, $batch changesets, deep insert, __next paging, the
OData v2 value formats and SAP error bodies; the conformance suite is in
test_sap_conformance.py and the mapping pack in test_sap_mappings.py.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import requests

from crm2erp.connectors.base import WriteAction
from crm2erp.connectors.sap import SapConnector, batch
from crm2erp.connectors.sap.odata import (
    format_date,
    format_time,
    literal,
    parse_date,
    parse_time,
    sap_error,
)
from crm2erp.emulators.sap.app import PASSWORD, USERNAME, make_app
from crm2erp.testing.conformance import read_all

from .test_sap_conformance import sap_config

BP = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"


@pytest.fixture
def emulator(serve):
    app = make_app(seed=3, business_partners=40, sales_orders=6, billing_documents=5,
                   requirements=4, page_size=15)
    return serve(app)


@pytest.fixture
def connector(emulator):
    with SapConnector(sap_config(emulator.base_url, write_batch_size=2)) as conn:
        yield conn


@pytest.fixture
def raw(emulator):
    session = requests.Session()
    session.auth = (USERNAME, PASSWORD)
    session.headers["Accept"] = "application/json"
    yield session
    session.close()


def partners(emulator, n: int) -> list[dict]:
    """Sample rows as a raw client must send them (the connector adds the category)."""
    return [{**row, "BusinessPartnerCategory": "2"}
            for row in emulator.sample_rows("business_partners", n)]


def token(raw, emulator) -> str:
    resp = raw.get(f"{emulator.base_url}{BP}/", headers={"x-csrf-token": "Fetch"})
    return resp.headers["x-csrf-token"]


# -- wire values ---------------------------------------------------------------

def test_odata_v2_values_round_trip():
    stamp = dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert format_date(stamp) == "/Date(1700000000000)/"
    assert format_date(stamp, offset=True) == "/Date(1700000000000+0000)/"
    assert parse_date("/Date(1700000000000+0000)/") == stamp
    assert format_date(dt.date(2024, 1, 31)) == "/Date(1706659200000)/"
    assert format_time(dt.time(12, 0)) == "PT12H00M00S"
    assert parse_time("PT08H30M05S") == dt.time(8, 30, 5)
    assert literal(stamp, "datetimeoffset") == "datetimeoffset'2023-11-14T22:13:20Z'"
    assert literal("O'Brien") == "'O''Brien'"
    with pytest.raises(ValueError):
        parse_date("2024-01-01")


def test_sap_error_body_gives_code_and_details():
    body = json.dumps({"error": {"code": "V1/302", "message": {"lang": "en", "value": "Top"},
                                 "innererror": {"errordetails": [
                                     {"code": "V1/302", "message": "Sold-to party missing"}]}}})
    assert sap_error(body.encode()) == ("V1/302", "Top; V1/302: Sold-to party missing")
    assert sap_error(b"<html>nope</html>") is None


def test_batch_bodies_round_trip():
    ops = [batch.Message("POST", "A_X", headers={"Content-Type": "application/json"},
                         body=b'{"a": 1}'),
           batch.Message("MERGE", "A_X('1')", headers={"If-Match": 'W/"7"'}, body=b"{}")]
    body, content_type = batch.encode([ops, batch.Message("GET", "A_X?$top=1")])
    parts = batch.decode(body, content_type)
    assert [m.method for m in parts[0]] == ["POST", "MERGE"]
    assert parts[0][1].header("if-match") == 'W/"7"' and parts[0][0].body == b'{"a": 1}'
    assert parts[1].target == "A_X?$top=1"
    with pytest.raises(ValueError):
        batch.decode(body[: len(body) // 2], content_type)


# -- what the emulator enforces -------------------------------------------------

def test_emulator_refuses_writes_without_a_valid_csrf_token(emulator, raw):
    url = f"{emulator.base_url}{BP}/A_BusinessPartner"
    row = partners(emulator, 1)[0]
    refused = raw.post(url, json=row)
    assert refused.status_code == 403 and refused.headers["x-csrf-token"] == "Required"
    good = token(raw, emulator)
    assert raw.post(url, json=row, headers={"x-csrf-token": "forged"}).status_code == 403
    emulator.invalidate_csrf()
    assert raw.post(url, json=row, headers={"x-csrf-token": good}).status_code == 403
    created = raw.post(url, json=row, headers={"x-csrf-token": token(raw, emulator)})
    assert created.status_code == 201
    assert created.json()["d"]["BusinessPartnerIDByExtSystem"] == row[
        "BusinessPartnerIDByExtSystem"]


def test_emulator_refuses_missing_and_stale_etags(emulator, raw):
    csrf = token(raw, emulator)
    entity = raw.get(f"{emulator.base_url}{BP}/A_BusinessPartner('1000001')").json()["d"]
    uri, etag = entity["__metadata"]["uri"], entity["__metadata"]["etag"]
    headers = {"x-csrf-token": csrf, "X-HTTP-Method": "MERGE"}
    assert raw.request("MERGE", uri, json={"SearchTerm2": "A"},
                       headers=headers).status_code == 428
    ok = raw.request("MERGE", uri, json={"SearchTerm2": "A"}, headers={**headers,
                                                                       "If-Match": etag})
    assert ok.status_code == 204 and ok.headers["etag"] != etag
    stale = raw.request("MERGE", uri, json={"SearchTerm2": "B"},
                        headers={**headers, "If-Match": etag})
    assert stale.status_code == 412
    assert sap_error(stale.content)[0] == "/IWBEP/CM_MGW_RT/020"


def test_emulator_applies_a_changeset_all_or_nothing(emulator, raw):
    good, bad, other = partners(emulator, 3)
    bad.pop("OrganizationBPName1")
    parts = [[batch.Message("POST", "A_BusinessPartner", body=json.dumps(good).encode(),
                            headers={"Content-Type": "application/json"}),
              batch.Message("POST", "A_BusinessPartner", body=json.dumps(bad).encode(),
                            headers={"Content-Type": "application/json"})],
             [batch.Message("POST", "A_BusinessPartner", body=json.dumps(other).encode(),
                            headers={"Content-Type": "application/json"})]]
    body, content_type = batch.encode(parts)
    resp = raw.post(f"{emulator.base_url}{BP}/$batch", data=body,
                    headers={"Content-Type": content_type, "x-csrf-token": token(raw, emulator)})
    assert resp.status_code == 202
    answers = batch.decode(resp.content, resp.headers["Content-Type"])
    assert isinstance(answers[0], batch.Message) and answers[0].status == 400
    assert "R11/401" in answers[0].body.decode()
    assert [m.status for m in answers[1]] == [201]
    ext = "BusinessPartnerIDByExtSystem"
    assert emulator.find("business_partners", **{ext: good[ext]}) == []  # rolled back
    assert len(emulator.find("business_partners", **{ext: other[ext]})) == 1


# -- what the connector does ------------------------------------------------------

def test_deep_insert_creates_partner_with_roles_address_and_customer(connector, emulator):
    row = emulator.sample_rows("business_partners", 1)[0]
    [result] = connector.upsert("business_partners", [row])
    assert result.action is WriteAction.CREATED
    [bp] = emulator.find("business_partners",
                         BusinessPartnerIDByExtSystem=row["BusinessPartnerIDByExtSystem"])
    assert bp["BusinessPartner"] == result.target_id == bp["Customer"]
    roles = {r["BusinessPartnerRole"] for r in bp["to_BusinessPartnerRole"]["results"]}
    assert roles == {"FLCU00", "FLCU01"}  # from create_defaults
    [address] = bp["to_BusinessPartnerAddress"]["results"]
    assert address["CityName"] == "Köln" and address["Country"] == "DE"
    assert bp["to_Customer"]["VATRegistration"] == row["to_Customer"]["VATRegistration"]
    assert bp["LastChangeDate"] is None and bp["CreationDate"].startswith("/Date(")


def test_update_merges_header_and_children_with_etags(connector, emulator):
    row = emulator.sample_rows("business_partners", 1)[0]
    first = connector.upsert("business_partners", [row])[0]
    row["OrganizationBPName1"] = "Renamed AG"
    row["to_BusinessPartnerAddress"]["CityName"] = "Bonn"
    second = connector.upsert("business_partners", [row])[0]
    assert second.action is WriteAction.UPDATED and second.target_id == first.target_id
    [bp] = emulator.find("business_partners", BusinessPartner=first.target_id)
    assert bp["OrganizationBPName1"] == "Renamed AG"
    assert bp["to_BusinessPartnerAddress"]["results"][0]["CityName"] == "Bonn"
    assert connector.upsert("business_partners", [row])[0].action is WriteAction.UNCHANGED


def test_csrf_token_invalidated_mid_upsert_is_fetched_again(connector, emulator):
    rows = emulator.sample_rows("business_partners", 6)  # 3 $batch calls of 2
    connector.sap.fetch_token("API_BUSINESS_PARTNER")
    emulator.invalidate_csrf_after(1)
    results = connector.upsert("business_partners", rows)
    assert [r.action for r in results] == [WriteAction.CREATED] * 6
    assert emulator.csrf_refusals == 1 and connector.sap.token_fetches == 2
    for row in rows:
        ext = row["BusinessPartnerIDByExtSystem"]
        assert len(emulator.find("business_partners", BusinessPartnerIDByExtSystem=ext)) == 1


def test_stale_etag_is_reread_and_written_once(connector, emulator):
    rows = emulator.sample_rows("business_partners", 3)
    created = connector.upsert("business_partners", rows)
    rows[1]["OrganizationBPName1"] = "Latest Name GmbH"
    emulator.bump_before_write("business_partners", created[1].target_id)
    results = connector.upsert("business_partners", rows)
    assert [r.action for r in results] == [WriteAction.UNCHANGED, WriteAction.UPDATED,
                                           WriteAction.UNCHANGED]
    assert emulator.etag_refusals == 1
    [bp] = emulator.find("business_partners", BusinessPartner=created[1].target_id)
    assert bp["OrganizationBPName1"] == "Latest Name GmbH"
    assert bp["SearchTerm2"] == "BUMPED"  # the other writer's change is kept too


def test_failing_record_carries_the_sap_message(connector, emulator):
    rows = emulator.sample_rows("business_partners", 2)
    rows.insert(1, emulator.invalid_row("business_partners"))
    results = connector.upsert("business_partners", rows)
    assert [r.ok for r in results] == [True, False, True]
    assert "R11/401" in results[1].error and "OrganizationBPName1" in results[1].error


def test_lost_batch_answer_does_not_duplicate(connector, emulator):
    rows = emulator.sample_rows("business_partners", 2)
    emulator.fail_next("truncate", on="$batch")  # committed, but the answer is cut
    results = connector.upsert("business_partners", rows)
    assert emulator.faults_pending == 0
    assert [r.action for r in results] == [WriteAction.CREATED] * 2
    for row, result in zip(rows, results, strict=True):
        found = emulator.find("business_partners",
                              BusinessPartnerIDByExtSystem=row["BusinessPartnerIDByExtSystem"])
        assert [f["BusinessPartner"] for f in found] == [result.target_id]


def test_sales_order_deep_insert_with_items(connector, emulator):
    rows = emulator.sample_rows("sales_orders", 2)
    rows[1]["to_Item"].append({"Material": "TG12", "RequestedQuantity": Decimal("3"),
                               "RequestedQuantityUnit": "PC",
                               "NetPriceAmount": Decimal("10.00")})
    rows[1]["SalesOrderDate"] = dt.date(2024, 5, 17)
    results = connector.upsert("sales_orders", rows)
    assert [r.action for r in results] == [WriteAction.CREATED] * 2
    [order] = emulator.find("sales_orders", SalesOrder=results[1].target_id)
    assert [i["SalesOrderItem"] for i in order["to_Item"]["results"]] == ["10", "20"]
    assert order["TotalNetAmount"] == "69.80"  # 2 x 19.90 + 3 x 10.00, as a string
    assert order["SalesOrderDate"] == format_date(dt.date(2024, 5, 17))
    rows[1]["to_Item"][1]["RequestedQuantity"] = Decimal("4")
    assert connector.upsert("sales_orders", rows)[1].action is WriteAction.UPDATED
    [order] = emulator.find("sales_orders", SalesOrder=results[1].target_id)
    assert order["TotalNetAmount"] == "79.80"


def test_sold_to_party_unknown_is_a_record_error(connector, emulator):
    [result] = connector.upsert("sales_orders", [emulator.invalid_row("sales_orders")])
    assert not result.ok and "V1/302" in result.error


def test_paging_follows_next_links_with_skiptoken(connector, emulator):
    batches = read_all(connector, "business_partners")
    assert sum(len(b.rows) for b in batches) == 40
    row = batches[0].rows[0]
    assert isinstance(row["CreationDate"], dt.datetime)  # /Date()/ decoded
    assert isinstance(row["to_BusinessPartnerAddress"], list)  # results unwrapped
    # 40 partners in pages of 15, in two ordered queries (changed / never changed)
    assert connector.client.stats.calls >= 4


def test_incremental_filter_uses_sap_literals(connector):
    from crm2erp.connectors.base import Cursor

    stream = connector.config.streams["business_partners"]
    changed, created = connector.reader.queries(stream, Cursor("2024-01-12T08:03:04.000Z"))
    assert "LastChangeDate eq datetime'2024-01-12T00:00:00'" in changed["$filter"]
    assert "LastChangeTime ge time'PT08H03M04S'" in changed["$filter"]
    assert "LastChangeDate eq null" in created["$filter"]
    assert created["$orderby"] == "CreationDate,CreationTime,BusinessPartner"
    orders = connector.reader.queries(connector.config.streams["sales_orders"],
                                      Cursor("2024-01-12T08:03:04Z"))
    assert orders[0]["$filter"] == \
        "LastChangeDateTime ge datetimeoffset'2024-01-12T08:03:04Z'"


def test_never_changed_partner_is_read_incrementally(connector, emulator):
    last = read_all(connector, "business_partners")[-1].cursor
    [created] = connector.upsert("business_partners",
                                 emulator.sample_rows("business_partners", 1))
    rows = [r for b in read_all(connector, "business_partners", last) for r in b.rows]
    assert [r["BusinessPartner"] for r in rows] == [created.target_id]
    assert rows[0]["LastChangeDate"] is None


def test_billing_documents_are_read_only_with_items(connector, emulator):
    rows = [r for b in read_all(connector, "billing_documents") for r in b.rows]
    assert len(rows) == emulator.count("billing_documents") == 5
    assert rows[0]["to_Item"] and rows[0]["to_Item"][0]["SalesDocument"]
    with pytest.raises(NotImplementedError):
        connector.upsert("billing_documents", [{}])


def test_planned_independent_requirements_round_trip(connector, emulator):
    rows = emulator.sample_rows("planned_independent_requirements", 2)
    first = connector.upsert("planned_independent_requirements", rows)
    assert [r.action for r in first] == [WriteAction.CREATED] * 2
    assert first[0].key.startswith("FC") and first[0].target_id
    rows[0]["to_PlndIndepRqmtItem"][0]["PlannedQuantity"] = Decimal("55")
    again = connector.upsert("planned_independent_requirements", rows)
    assert [r.action for r in again] == [WriteAction.UPDATED, WriteAction.UNCHANGED]
    found = connector.lookup("planned_independent_requirements", [first[0].key])
    assert found[first[0].key]["to_PlndIndepRqmtItem"][0]["PlannedQuantity"] == "55"


def test_quota_exhausted_is_fatal_with_advice(connector, emulator):
    from crm2erp.errors import FatalError

    emulator.exhaust_limit()
    with pytest.raises(FatalError, match="quota"):
        read_all(connector, "sales_orders")
