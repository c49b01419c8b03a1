"""The emulators' server speaks HTTP/1.1 with keep-alive, as the vendors' servers do:
a connector's session sends many requests over ONE TCP connection (counted on the
server side), and the fault paths (429/503 with ``Retry-After``, a cut body, a
write committed whose answer is lost) still work over a kept-alive connection."""

from __future__ import annotations

import http.client

import pytest
import requests

from crm2erp.connectors.base import WriteAction
from crm2erp.connectors.salesforce import SalesforceConnector
from crm2erp.connectors.sap import SapConnector
from crm2erp.emulators.kernel.server import serve_wsgi, serving
from crm2erp.emulators.salesforce.app import make_app as salesforce_app
from crm2erp.emulators.sap.app import make_app as sap_app

from .test_salesforce import config as salesforce_config
from .test_sap_conformance import sap_config


@pytest.fixture
def org():
    app = salesforce_app(seed=8, accounts=45, contacts_per_account=1, page_size=200)
    with serving(app) as server:
        yield app, server


@pytest.fixture
def sap():
    app = sap_app(seed=3, business_partners=40, sales_orders=2, billing_documents=2,
                  requirements=2, page_size=15)
    with serving(app) as server:
        yield app, server


def _read(conn, stream: str) -> list[dict]:
    return [r for batch in conn.read(stream) for r in batch.rows]


def test_a_paged_read_reuses_one_connection(sap):
    app, server = sap
    with SapConnector(sap_config(server.url)) as conn:
        rows = _read(conn, "business_partners")
        assert len(rows) == 40
        assert conn.client.stats.calls >= 3          # 15 a page: 3 pages at least
    assert server.accepted_connections == 1


def test_faults_with_retry_after_are_retried_on_the_same_connection(org):
    app, server = org
    conn = SalesforceConnector(salesforce_config(server.url, page_size=200))
    waits: list[float] = []
    conn.client.sleep = waits.append                 # the waits are recorded, not slept
    app.fail_next(429, retry_after=2, on="/query")
    app.fail_next(503, retry_after=3, on="/query")
    app.fail_next("truncate", on="/query")           # a cut, unparsable body
    rows = _read(conn, "accounts")
    assert app.faults_pending == 0
    assert sorted(r["Id"] for r in rows) == sorted(a["Id"] for a in app.org.records("Account"))
    assert 2.0 in waits and 3.0 in waits             # Retry-After honoured
    assert conn.client.stats.retries == 3            # each fault was answered, then retried
    assert server.accepted_connections == 1


def test_a_write_committed_whose_answer_is_lost_is_not_duplicated(sap):
    app, server = sap
    with SapConnector(sap_config(server.url, write_batch_size=2)) as conn:
        _read(conn, "business_partners")            # the session is open and kept alive
        rows = app.sample_rows("business_partners", 2)
        app.fail_next("truncate", on="$batch")       # committed, but the answer is cut
        results = conn.upsert("business_partners", rows)
    assert app.faults_pending == 0 and [r.action for r in results] == [WriteAction.CREATED] * 2
    key = "BusinessPartnerIDByExtSystem"      # read back: each partner stored once, as answered
    stored = {row[key]: [f["BusinessPartner"] for f in app.find("business_partners",
                                                                **{key: row[key]})]
              for row in rows}
    answered = zip(rows, results, strict=True)
    assert stored == {row[key]: [result.target_id] for row, result in answered}
    assert server.accepted_connections == 1


def test_http11_keep_alive_on_the_wire():
    """stdlib http.client: two requests on one connection, both answered as HTTP/1.1."""
    def app(environ, start_response):
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    with serving(app) as server:
        client = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
        answers = []
        for path in ("/one", "/a%2Fb%20c"):
            client.request("GET", path)
            response = client.getresponse()
            answers.append((response.version, response.getheader("Connection"), response.read()))
        client.close()
        # PATH_INFO fully unquoted (%2F too), as the stdlib server gave it to the emulators
        assert answers == [(11, None, b"/one"), (11, None, b"/a/b c")]
        assert server.accepted_connections == 1


def test_port_zero_gives_distinct_free_ports_and_serve_wsgi_yields_the_url():
    def app(environ, start_response):
        start_response("204 No Content", [])
        return []
    with serve_wsgi(app) as first, serve_wsgi(app) as second:
        assert first != second and first.startswith("http://127.0.0.1:")
        assert requests.get(first + "/x", timeout=5).status_code == 204
        assert requests.get(second + "/x", timeout=5).status_code == 204
    with pytest.raises(requests.ConnectionError):
        requests.get(first + "/x", timeout=5)       # stopped when the block ended
