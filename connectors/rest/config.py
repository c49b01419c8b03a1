"""Settings of the declarative REST connector: a whole connector in YAML.

Example (a Pipedrive-like CRM, see ``docs/connectors/rest.md``)::

    type: rest
    base_url: https://api.example-crm.com
    auth: {type: client_credentials, client_id: ${CRM_ID}, client_secret: ${CRM_SECRET},
           token_url: /oauth/token}
    rate_limit: {requests_per_second: 10, burst: 20}
    errors:
      - {status: 429, body_contains: "budget", action: fatal,
         message: "the daily API budget is used up"}
    streams:
      organizations:
        path: /v1/organizations
        records: data
        key: id
        cursor: {field: update_time, param: since, format: "%Y-%m-%d %H:%M:%S"}
        paginator: {type: offset, limit: 100, offset_param: start, order_by: id,
                    has_more: additional_data.pagination.more_items_in_collection}
        deleted: {field: active_flag, equals: false}
        write:
          mode: lookup
          key: ref
          find: {path: /v1/organizations/find, param: ref, records: data}
          create: {method: POST, path: /v1/organizations}
          update: {method: PUT, path: "/v1/organizations/{id}"}
          id_path: data.id

``rename`` (API name -> row name) is applied to every record read; ``key``,
``cursor.field``, ``deleted.field`` and ``order_by`` name fields of the renamed
row. Writes send the row with the renames reversed unless ``write.rename`` says
otherwise. Names are dotted paths: ``custom_fields.erp_id: erp_id`` reads a
nested field, and the reversed rename writes it back nested.
"""

from __future__ import annotations

__all__ = ["RestConfig", "RestStreamConfig", "CursorConfig", "PaginatorConfig",
           "WriteConfig", "EndpointConfig", "FindConfig", "BatchConfig", "ErrorRule",
           "DeletedConfig", "VerifyConfig"]

from typing import Any, Literal

from pydantic import Field, model_validator

from crm2erp.connectors.toolkit.config import StrictModel, web_url
from crm2erp.connectors.toolkit.cursors import CursorConfig
from crm2erp.connectors.toolkit.listing import NoPaging, PaginatorConfig
from crm2erp.connectors.toolkit.rules import ErrorRule
from crm2erp.connectors.toolkit.streams import NamedStreamsConfig

RestUrl = web_url("https://api.example.com")


class DeletedConfig(StrictModel):
    """Rows whose ``field`` equals ``equals`` are deletions (soft-deleted records)."""

    field: str
    equals: Any = True


class EndpointConfig(StrictModel):
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: str


class FindConfig(StrictModel):
    """``GET path?param=<key>`` lists the records that have that key."""

    path: str
    param: str
    records: str | None = None
    id_field: str = Field("id", description="the target id in a found record")


class BatchConfig(StrictModel):
    """One request for many records; the reply lists one result per record, in order."""

    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: str
    size: int = Field(100, ge=1, le=10_000)
    records_field: str = "records"
    results: str | None = Field(None, description="dotted path of the result list")
    created_path: str | None = Field("created", description="per-result flag: created?")
    error_path: str | None = Field("error", description="per-result error message")


class RemoveConfig(StrictModel):
    """One request that deletes or archives a record by its target id.

    ``path`` holds ``{id}``; ``body`` is sent as JSON when given (an archive:
    ``PATCH /v1/organizations/{id}`` with ``{active_flag: false}``). A reply
    with a status in ``not_found`` says the record does not exist: the delete
    is reported "not found", never counted as done.
    """

    method: Literal["DELETE", "POST", "PUT", "PATCH"] = "DELETE"
    path: str
    body: dict[str, Any] | None = None
    not_found: list[int] = Field(default_factory=lambda: [404, 410])

    @model_validator(mode="after")
    def _has_id(self) -> RemoveConfig:
        if "{id}" not in self.path:
            raise ValueError(f"path {self.path!r} needs {{id}}, the record's target id")
        return self


class VerifyConfig(StrictModel):
    """Check that a write took effect: every field sent must come back with the value sent.

    ``record`` is the dotted path of the stored record in the reply of the
    write (``data``), or in the reply of ``read_back``: a ``GET`` path with
    ``{id}`` (the target id) or ``{key}``. ``ignore`` lists fields the API
    rewrites on purpose (formats a phone number, stamps a time).
    """

    record: str | None = Field(None, description="dotted path of the stored record in a reply")
    read_back: str | None = Field(None, description="GET path with {id} or {key}")
    ignore: list[str] = Field(default_factory=list)


class WriteConfig(StrictModel):
    """How rows are written: ``upsert`` (one idempotent call per row, key in the path),
    ``lookup`` (find by key, then create or update) or ``batch``."""

    mode: Literal["upsert", "lookup", "batch"]
    key: str = Field(description="row field holding the upsert key (an external id)")
    method: Literal["POST", "PUT", "PATCH"] = "PUT"
    path: str | None = Field(None, description="upsert mode: path with {key}")
    find: FindConfig | None = None
    create: EndpointConfig | None = None
    update: EndpointConfig | None = Field(None, description="path with {id} (or {key})")
    batch: BatchConfig | None = None
    body: str | None = Field(None, description="wrap each record under this key")
    id_path: str = Field("id", description="dotted path of the target id in a reply/result")
    error_path: str | None = Field(None, description="dotted path of an error message")
    created_status: int = 201
    send_key: bool = Field(True, description="false: the key goes into the path only")
    rename: dict[str, str] | None = Field(None, description="row name -> API name")
    verify: VerifyConfig | None = None
    delete: RemoveConfig | None = Field(None, description="delete_policy delete: the request")
    archive: RemoveConfig | None = Field(None, description="delete_policy archive: the request")

    @model_validator(mode="after")
    def _complete(self) -> WriteConfig:
        need = {"upsert": ["path"], "lookup": ["find", "create", "update"],
                "batch": ["batch"]}[self.mode]
        missing = [n for n in need if getattr(self, n) is None]
        if missing:
            raise ValueError(f"write mode {self.mode!r} needs {', '.join(missing)}")
        if self.mode == "upsert" and "{key}" not in (self.path or ""):
            raise ValueError("write mode 'upsert' needs a path containing {key}")
        return self


class RestStreamConfig(StrictModel):
    path: str
    params: dict[str, Any] = Field(default_factory=dict)
    records: str | None = Field(None, description="dotted path of the record list")
    key: str = "id"
    cursor: CursorConfig | None = None
    paginator: PaginatorConfig = Field(default_factory=lambda: NoPaging(type="none"))
    rename: dict[str, str] = Field(default_factory=dict, description="API name -> row name")
    deleted: DeletedConfig | None = None
    write: WriteConfig | None = None

    @model_validator(mode="after")
    def _immutable_order(self) -> RestStreamConfig:
        order_by = getattr(self.paginator, "order_by", None)
        if order_by and self.cursor is not None and order_by == self.cursor.field:
            raise ValueError(
                f"paginator.order_by {order_by!r} is the cursor field, which changes when a "
                "record changes: a record updated during the run moves to the end and the "
                "one after it is skipped. Order by the id (or creation time) instead")
        return self


class RestConfig(NamedStreamsConfig):
    """A REST API described in YAML: base URL, auth, transport and streams."""

    type: Literal["rest"] | None = None
    base_url: RestUrl
    name: str = Field("rest", description="shown in log lines and error messages")
    headers: dict[str, str] = Field(default_factory=dict)
    errors: list[ErrorRule] = Field(default_factory=list)
    streams: dict[str, RestStreamConfig] = Field(min_length=1)
