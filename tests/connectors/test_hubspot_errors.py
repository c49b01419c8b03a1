"""HubSpot error classes, one test per row of the table in docs/connectors/hubspot.md.

Bodies follow HubSpot's documented error format: ``{"status": "error",
"message", "correlationId", "category", "errors": [{"message", "code", "in",
"context"}]}`` (every field optional), and the CRM v3 batch multi-status
answer (207) with one error per refused input, named by its
``objectWriteTraceId``.
"""

from __future__ import annotations

import json

import pytest

from crm2erp.connectors.base import WriteAction
from crm2erp.connectors.hubspot import HubSpotConfig, HubSpotConnector
from crm2erp.emulators.hubspot.app import TOKEN, make_app
from crm2erp.errors import ConfigError, FatalError

FAST_RETRY = {"max_attempts": 3, "backoff_base": 0.001, "backoff_max": 0.01}


def connector(url, **extra):
    return HubSpotConnector(HubSpotConfig.model_validate({
        "base_url": url, "retry": FAST_RETRY, "search_requests_per_second": None,
        "auth": {"type": "bearer", "token": TOKEN}, **extra}))


@pytest.fixture
def portal(serve):
    app = make_app(seed=6, companies=10)
    return serve(app)


def test_unknown_property_in_a_batch_upsert_stops_the_run_naming_it(portal):
    conn = connector(portal.base_url)
    rows = portal.sample_rows("companies", 3)
    rows[1]["colour"] = "red"
    before = portal.count("companies")
    with pytest.raises(ConfigError, match='PROPERTY_DOESNT_EXIST.*"colour"'):
        conn.upsert("companies", rows)
    assert portal.count("companies") == before     # HubSpot refused the whole batch


def test_unknown_property_named_only_in_the_message_stops_the_run(portal):
    conn = connector(portal.base_url)
    detail = [{"isValid": False, "message": 'Property "colour" does not exist',
               "error": "PROPERTY_DOESNT_EXIST", "name": "colour",
               "localizedErrorMessage": 'Property "colour" does not exist', "portalId": 62515}]
    portal.reply_next(400, {"status": "error", "category": "VALIDATION_ERROR",
                            "message": "Property values were not valid: " + json.dumps(detail),
                            "correlationId": "6f5c8a36-0d4e-4f3e-9d0e-3c7c9a2b1f10"},
                      on="/batch/upsert")
    with pytest.raises(ConfigError, match="colour"):
        conn.upsert("companies", portal.sample_rows("companies", 2))


def test_unknown_property_in_a_write_back_stops_the_run(portal):
    conn = connector(portal.base_url)
    record = portal.portal.records("companies")[0]
    with pytest.raises(ConfigError, match="erp_customer_numbr"):
        conn.update("companies", [{"id": record["id"], "erp_customer_numbr": "C-1"}])


def test_a_refused_value_fails_only_its_row(portal):
    conn = connector(portal.base_url)
    rows = portal.sample_rows("contacts", 3)
    rows[1]["email"] = "not-an-email"
    results = conn.upsert("contacts", rows)
    assert [r.ok for r in results] == [True, False, True]
    assert "INVALID_EMAIL" in results[1].error
    for row in (rows[0], rows[2]):   # read back from the portal
        stored = portal.portal.find("contacts", "email", row["email"])
        assert stored["properties"]["lastname"] == row["lastname"]


def test_a_batch_refused_for_its_data_fails_its_rows(portal):
    conn = connector(portal.base_url)
    portal.reply_next(400, {"status": "error", "category": "VALIDATION_ERROR",
                            "message": "Property values were not valid: [{\"isValid\":false,"
                                       "\"message\":\"Email address x is invalid\","
                                       "\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}]",
                            "correlationId": "0b8f0c9e-1b7a-4d7e-a2a8-6a7c0e7f3d21",
                            "errors": [{"message": "Email address x is invalid",
                                        "code": "INVALID_EMAIL",
                                        "context": {"propertyName": ["email"]}}]},
                      on="/batch/upsert")
    results = conn.upsert("contacts", portal.sample_rows("contacts", 2))
    assert [r.action for r in results] == [WriteAction.FAILED] * 2
    assert all("INVALID_EMAIL" in r.error for r in results)


def test_unknown_object_type_on_read_is_a_configuration_error(portal):
    conn = connector(portal.base_url, streams={"companies": {
        "object_type": "compnies", "properties": ["name"]}})
    with pytest.raises(ConfigError, match="Unable to infer object type from: compnies"):
        list(conn.read("companies"))


def test_other_refusals_are_fatal_with_hubspots_message(portal):
    conn = connector(portal.base_url)
    portal.reply_next(409, {"status": "error", "category": "CONFLICT",
                            "message": "Search is temporarily disabled for this portal",
                            "correlationId": "3e0f6a0c-7b1d-4a43-9f55-2c9b3d1e0a77"},
                      on="/search")
    with pytest.raises(FatalError, match="CONFLICT: Search is temporarily disabled") as info:
        list(conn.read("companies"))
    assert not isinstance(info.value, ConfigError)


def test_a_404_of_an_associations_read_stops_the_read_but_one_of_a_batch_read_finds_none(portal):
    # both paths end in /batch/read; only the v3 read by id answers 404 for "none of
    # these ids exists", so only there is it an empty answer
    conn = connector(portal.base_url)
    portal.reply_next(404, {"status": "error", "category": "OBJECT_NOT_FOUND",
                            "message": "resource not found"}, on="/crm/v4/associations/")
    with pytest.raises(FatalError, match="associations contacts -> companies failed with "
                                         "HTTP 404"):
        list(conn.read("contacts"))
    portal.reply_next(404, {"status": "error", "category": "OBJECT_NOT_FOUND",
                            "message": "resource not found"}, on="/batch/read")
    assert conn.lookup("companies", ["CUST-NONE"]) == {}


def test_a_batch_refused_with_a_body_that_is_not_json_fails_its_rows_with_the_text(portal):
    """A proxy in front of HubSpot may refuse with an HTML page: the rows fail with its
    text (no JSON decoding error), and nothing was written."""
    conn = connector(portal.base_url)
    before = portal.count("contacts")
    portal.reply_next(400, "<html><body><h1>400 Bad Request</h1>Request Header Or Cookie "
                           "Too Large</body></html>", {"Content-Type": "text/html"},
                      on="/batch/upsert")
    results = conn.upsert("contacts", portal.sample_rows("contacts", 2))
    assert [r.action for r in results] == [WriteAction.FAILED] * 2
    assert all("Request Header Or Cookie Too Large" in r.error for r in results)
    assert portal.count("contacts") == before
