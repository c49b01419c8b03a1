"""The toolkit's bases: stream and connection config (``toolkit.streams``) and the
keyed writer with its look-up loop (``toolkit.targets``)."""

from __future__ import annotations

import pytest
import requests
from pydantic import Field, ValidationError

from crm2erp.connectors.base import StreamInfo
from crm2erp.connectors.toolkit.connector import ApiConnector
from crm2erp.connectors.toolkit.streams import (
    ApiConnectionConfig,
    ApiStreamConfig,
    KeyedChildConfig,
    NamedStreamsConfig,
)
from crm2erp.connectors.toolkit.targets import (
    KeyedWriter,
    call_failed,
    json_answer,
    not_found,
    rows_by_key,
)
from crm2erp.errors import ConfigError, FatalError

DEFAULTS = {"orders": {"table": "order", "fields": ["id"], "children": ["lines"]},
            "lines": {"table": "line", "fields": ["id", "qty"]}}


class Stream(ApiStreamConfig[KeyedChildConfig]):
    table: str
    fields: list[str]


class Connection(ApiConnectionConfig):
    child_key = "{table}_id"
    streams: dict[str, Stream] = Field(default_factory=Stream.defaults(DEFAULTS))


def test_defaults_are_validated_fresh_per_connection_and_children_get_their_foreign_key():
    one, two = Connection(), Connection()
    assert one.streams["orders"].children == {"lines": KeyedChildConfig(stream="lines")}
    assert one.streams["orders"].track_deletes is True
    assert one.streams["lines"].fields == ["id", "qty", "order_id"]   # read to group lines
    one.streams["lines"].fields.append("price")
    assert two.streams["lines"].fields == ["id", "qty", "order_id"]


def test_a_named_foreign_key_wins_over_the_default():
    conn = Connection(streams={"orders": {"table": "order", "fields": ["id"], "children": {
        "items": {"stream": "lines", "foreign_key": "parent"}}}, "lines": DEFAULTS["lines"]})
    orders = conn.streams["orders"]
    assert conn.foreign_key(orders, orders.children["items"]) == "parent"
    assert conn.streams["lines"].fields == ["id", "qty", "parent"]


@pytest.mark.parametrize("streams,problem", [
    ({"orders": {**DEFAULTS["orders"], "children": ["nope"]}}, "names stream 'nope'"),
    ({"orders": {**DEFAULTS["orders"], "children": ["orders"]}}, "cannot embed itself"),
    ({"bad name": DEFAULTS["lines"]}, "must be letters, digits and _"),
])
def test_children_and_stream_names_are_checked(streams, problem):
    with pytest.raises(ValidationError, match=problem):
        Connection(streams=streams)


def test_without_child_key_children_are_checked_but_no_field_is_added():
    class ByAssociation(ApiConnectionConfig):
        streams: dict[str, Stream] = Field(default_factory=Stream.defaults(DEFAULTS))

    assert ByAssociation().streams["lines"].fields == ["id", "qty"]


class Writer(KeyedWriter):
    system = "Notes CRM"
    key_setting = "external_id"
    key_hint = "set one to write to it"


def test_write_key_is_the_streams_setting_or_a_config_error_saying_how_to_set_it():
    class WithKey:
        external_id = "erp_id"

    class WithoutKey:
        external_id = None

    writer = Writer(client=None, config=None)
    assert writer.write_key("notes", WithKey()) == "erp_id"
    with pytest.raises(ConfigError, match="Notes CRM stream 'notes' has no external_id; "
                       "set one to write to it"):
        writer.write_key("notes", WithoutKey())


def test_rows_by_key_asks_each_key_once_in_chunks_and_leaves_out_the_missing():
    asked: list[list[str]] = []
    held = {"1": {"id": 1}, "3": {"id": 3}, "4": {"id": 4}}

    def fetch(chunk):
        asked.append(chunk)
        return [(key, held[key]) for key in chunk if key in held]

    assert rows_by_key([1, "2", "1", 3, 4], 2, fetch) == held
    assert asked == [["1", "2"], ["3", "4"]]
    assert rows_by_key([], 2, fetch) == {} and len(asked) == 2


def test_call_failed_names_the_call_the_status_and_the_body():
    resp = requests.Response()
    resp.status_code, resp._content = 502, b"upstream down " * 40
    error = call_failed("HubSpot", "search on deals", resp)
    assert isinstance(error, FatalError)
    assert str(error) == f"HubSpot search on deals failed with HTTP 502: {resp.text[:300]}"


def test_json_answer_is_the_body_of_a_success_and_call_failed_otherwise():
    ok, refused = requests.Response(), requests.Response()
    ok.status_code, ok._content = 200, b'{"results": [1]}'
    refused.status_code, refused._content = 400, b'{"message": "bad"}'
    assert json_answer("HubSpot", "search on deals", ok) == {"results": [1]}
    with pytest.raises(FatalError) as error:
        json_answer("HubSpot", "search on deals", refused)
    assert str(error.value) == str(call_failed("HubSpot", "search on deals", refused))


class Parts:
    """Stands for a reader and a writer: remembers what it was built with."""

    def __init__(self, *args):
        self.args = args


class OrdersConnector(ApiConnector):
    name = "orders"
    system = "Orders API"
    read_only = "is read-only (no table)"
    Config = Connection
    build_client = staticmethod(lambda config, **options: ("client", config, options))
    Reader = Parts
    Writer = Parts

    check_hint = " - fix the tables"

    def stream_info(self, name, stream):
        return StreamInfo(name=name, key=("id",), writable=stream.table == "order")

    def check_access(self):
        self.checked = ["access"]

    def stream_problem(self, stream):
        self.checked.append(stream.table)
        if stream.table == "line":
            raise ConfigError("no table line")
        return None if stream.table == "order" else f"{stream.table} is odd"


def test_api_connector_builds_its_parts_lists_streams_and_refuses_read_only_writes():
    config = Connection()
    connector = OrdersConnector(config, timeout=3)
    assert connector.client == ("client", config, {"timeout": 3})
    assert connector.reader.args == (connector.client, config)
    assert connector.writer.args == (connector.client, config, connector.reader)
    assert [(s.name, s.writable) for s in connector.streams()] == [("orders", True),
                                                                    ("lines", False)]
    assert connector.writable_config("orders") is config.streams["orders"]
    with pytest.raises(NotImplementedError,
                       match=r"^Orders API stream 'lines' is read-only \(no table\)$"):
        connector.writable_config("lines")
    with pytest.raises(ConfigError, match="has no stream 'nope'"):
        connector.writable_config("nope")


class Plain(NamedStreamsConfig):
    streams: dict[str, dict]


def test_named_streams_config_refuses_a_stream_name_that_is_not_an_identifier():
    assert list(Plain(streams={"orders_2": {}}).streams) == ["orders_2"]
    with pytest.raises(ValidationError, match="stream name '2-orders' must be letters"):
        Plain(streams={"2-orders": {}})


def test_not_found_is_a_failure_in_the_engines_words_with_the_systems_detail():
    from crm2erp.connectors.base import WriteAction

    result = not_found("001", "Account", "NOT_FOUND: entity is deleted")
    assert (result.key, result.action, result.target_id) == ("001", WriteAction.FAILED, None)
    assert result.error == "not found: no record '001' in Account (NOT_FOUND: entity is deleted)"


def test_api_connector_check_proves_access_then_names_every_streams_problem():
    connector = OrdersConnector(Connection())
    with pytest.raises(ConfigError, match=r"^Orders API connection: stream 'lines': no table "
                       r"line - fix the tables$"):
        connector.check()
    assert connector.checked == ["access", "order", "line"]
    connector.config.streams["lines"].table = "order"
    connector.check()
