"""The Salesforce connector (entry point ``salesforce``).

Reads Account, Contact, Opportunity, OpportunityLineItem and Product2 (or any
sObject configured as a stream) through the REST query API, or Bulk API 2.0
for large reads (with configured children embedded, such as an opportunity's
line items), upserts through sObject Collections on an external id,
updates existing records by Id (write-back) and deletes or archives by Id.
See ``docs/connectors/salesforce.md``; the emulator is
:mod:`crm2erp.emulators.salesforce.app`.
"""

from __future__ import annotations

__all__ = ["SalesforceConnector", "SalesforceConfig", "StreamConfig"]

from crm2erp.connectors.base import StreamInfo
from crm2erp.connectors.salesforce.api import build_client, parse_limit_info
from crm2erp.connectors.salesforce.config import SalesforceConfig, StreamConfig
from crm2erp.connectors.salesforce.source import SalesforceReader
from crm2erp.connectors.salesforce.target import SalesforceWriter
from crm2erp.connectors.toolkit.connector import ApiConnector
from crm2erp.connectors.toolkit.targets import WriteBackConnector


class SalesforceConnector(ApiConnector, WriteBackConnector):
    """Salesforce as a source and a target; ``client`` exposes request stats."""

    name = "salesforce"
    system = "Salesforce"
    Config = SalesforceConfig
    build_client = staticmethod(build_client)
    Reader = SalesforceReader
    Writer = SalesforceWriter
    check_hint = " - fix the field names or the field-level security of the integration user"

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """``(used, max)`` daily API requests, from the last ``Sforce-Limit-Info`` seen."""
        return parse_limit_info(self.client.last_response) or self.reader.api_usage

    def check_access(self) -> None:
        """Fetch a token and read the API limits."""
        self.client.get_json(f"{self.config.api_path}/limits")

    def stream_problem(self, stream: StreamConfig) -> str | None:
        """The fields the stream's sObject does not have (the external id field is one of
        ``fields``: the config adds it)."""
        missing = set(stream.fields) - set(self.reader.describe(stream.sobject))
        return f"{stream.sobject} has no field(s) {', '.join(sorted(missing))}" if missing else None

    def stream_info(self, name: str, stream: StreamConfig) -> StreamInfo:
        return StreamInfo(name=name, key=("Id",), cursor_field=stream.cursor_field,
                          children=tuple(stream.children), writable=bool(stream.external_id_field),
                          fields=(*stream.fields, *stream.children),
                          delete_modes=("delete", "archive") if stream.archive else ("delete",))
