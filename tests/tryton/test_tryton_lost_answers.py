"""Tryton writes whose answer is lost after trytond committed them make each record once.

A small proxy in front of the test trytond forwards every JSON-RPC call and, for
the methods told to, drops the answer after trytond answered (the call was
committed): the connector sees the connection cut. Everything is read back from
trytond over its own RPC.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections import Counter
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from crm2erp.connectors import WriteAction
from crm2erp.connectors.tryton import TrytonConfig, TrytonConnector


class AnswerLosingProxy:
    """Forwards calls to ``upstream``; the next ``lose[method]`` answers of ``method``
    are dropped once trytond gave them. ``sent`` counts the calls of each method."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.lose: Counter = Counter()
        self.sent: Counter = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # shutdown() waits for the loop to look again: every 0.05 s, not the default 0.5 s
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                method = json.loads(body).get("method")
                headers = {k: self.headers[k] for k in ("Authorization", "Content-Type")
                           if self.headers[k]}
                answer = requests.post(proxy.upstream + self.path, data=body,
                                       headers=headers, timeout=120)
                with proxy.lock:
                    proxy.sent[method] += 1
                    drop = proxy.lose[method] > 0
                    if drop:
                        proxy.lose[method] -= 1
                if drop:   # committed in trytond; the client sees the connection cut
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type",
                                                                   "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(tryton_server):
    lossy = AnswerLosingProxy(tryton_server.url)
    yield lossy
    lossy.close()


@pytest.fixture
def proxied(tryton_server, proxy):
    """A TrytonConnector talking to trytond through the proxy."""
    config = TrytonConfig.model_validate(tryton_server.settings(url=proxy.url))
    connector = TrytonConnector(config)
    yield connector
    connector.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def read(tryton, model: str, domain: list, fields: list[str]) -> list[dict]:
    return tryton.client.model(model, "search_read", domain, 0, None, None, fields,
                               context={"active_test": False})


def test_lost_party_create_answer_creates_each_party_once(tryton, proxied, proxy):
    codes = [unique("LOST"), unique("LOST")]
    proxy.lose["model.party.party.create"] = 1
    results = proxied.upsert("parties", [
        {"code": code, "name": f"Lost {code}", "email": f"{code.lower()}@example.org",
         "phone": "+49 30 1234567"} for code in codes])
    parties = {p["code"]: p for p in read(tryton, "party.party", [("code", "in", codes)],
                                          ["code", "name"])}
    assert sorted(parties) == sorted(codes)                # exactly one party per code
    assert [(r.key, r.action, r.target_id) for r in results] == [
        (code, WriteAction.CREATED, str(parties[code]["id"])) for code in codes]
    assert all(parties[code]["name"] == f"Lost {code}" for code in codes)
    contacts = read(tryton, "party.contact_mechanism",
                    [("party", "in", [p["id"] for p in parties.values()])], ["type"])
    assert sorted(c["type"] for c in contacts) == ["email", "email", "phone", "phone"]
    assert proxy.sent["model.party.party.create"] == 1     # never sent a second time


def test_lost_product_create_answer_creates_the_product_once(tryton, proxied, proxy):
    code = unique("P-LOST")
    proxy.lose["model.product.template.create"] = 1
    [result] = proxied.upsert("products", [{"code": code, "name": f"Lost {code}",
                                            "list_price": "12.50"}])
    products = read(tryton, "product.product", [("code", "=", code)],
                    ["code", "template.name", "template.list_price"])
    assert len(products) == 1
    assert read(tryton, "product.template", [("name", "=", f"Lost {code}")], ["id"]) == [
        {"id": products[0]["template."]["id"]}]
    assert Decimal(str(products[0]["template."]["list_price"])) == Decimal("12.50")
    assert (result.action, result.target_id) == (WriteAction.CREATED, str(products[0]["id"]))
    assert proxy.sent["model.product.template.create"] == 1


def test_lost_answers_of_sale_create_quote_and_confirm_leave_one_confirmed_sale(
        tryton, proxied, proxy):
    customer, ref = unique("LOSTC"), unique("LOSTDEAL")
    assert tryton.upsert("parties", [{
        "code": customer, "name": f"Customer {customer}",
        "addresses": [{"street": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin",
                       "country": "DE", "invoice": True, "delivery": True}]}])[0].ok
    for method in ("create", "quote", "confirm"):
        proxy.lose[f"model.sale.sale.{method}"] = 1
    [result] = proxied.upsert("sales", [{
        "reference": ref, "party_code": customer, "currency": "EUR",
        "lines": [{"product": "P-WIDGET", "quantity": "2", "unit_price": "10.00"}]}])
    sales = read(tryton, "sale.sale", [("reference", "=", ref)],
                 ["state", "total_amount", "lines", "party.code"])
    assert len(sales) == 1
    [sale] = sales
    assert sale["state"] in ("confirmed", "processing") and len(sale["lines"]) == 1
    assert Decimal(str(sale["total_amount"])) == Decimal("20.00")
    assert sale["party."]["code"] == customer
    assert (result.action, result.target_id, result.error) == (
        WriteAction.CREATED, str(sale["id"]), None)
    assert [proxy.sent[f"model.sale.sale.{m}"] for m in ("create", "quote", "confirm")] == [
        1, 1, 1]


def test_lost_answers_of_forecast_create_and_confirm_leave_one_done_forecast(
        tryton, proxied, proxy):
    number = uuid.uuid4().int % 1200
    first = dt.date(2100 + number // 12, number % 12 + 1, 1)   # a month no other test uses
    period = first.isoformat()[:7]
    for method in ("create", "confirm"):
        proxy.lose[f"model.stock.forecast.{method}"] = 1
    [result] = proxied.upsert("forecasts", [{"key": f"P-WIDGET|{period}",
                                             "product": "P-WIDGET", "period": period,
                                             "quantity": 4}])
    forecasts = read(tryton, "stock.forecast", [("from_date", "=", first)],
                     ["state", "lines"])
    assert len(forecasts) == 1
    [forecast] = forecasts
    assert forecast["state"] == "done"
    lines = read(tryton, "stock.forecast.line", [("forecast", "=", forecast["id"])],
                 ["product.code", "quantity"])
    assert [(ln["product."]["code"], ln["quantity"]) for ln in lines] == [("P-WIDGET", 4.0)]
    assert (result.action, result.target_id, result.error) == (
        WriteAction.CREATED, str(lines[0]["id"]), None)
    assert [proxy.sent[f"model.stock.forecast.{m}"] for m in ("create", "confirm")] == [1, 1]
