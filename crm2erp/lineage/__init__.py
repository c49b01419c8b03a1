"""OpenLineage run events for crm2erp syncs (needs the ``lineage`` extra).

Each sync emits START, then COMPLETE or FAIL, through an
``openlineage-python`` client: a file transport for ``crm2erp sync run
--lineage-file PATH`` (one JSON event per line), or the Airflow OpenLineage
provider's client inside a task
(:func:`crm2erp.orchestration.tasks.airflow_lineage`).

Datasets are named by the OpenLineage naming conventions
(``postgres://host:port`` + ``db.schema.table``, ``mysql://host:port`` +
``db.table``, ``sqlite://<db file>`` + ``main.table``, ``salesforce://<host>``
+ ``Account``, ``<type>://<host>`` + stream for the other APIs,
``file://`` + path). The output dataset carries a ``columnLineage`` facet
composed from the flow's two mappings: each target field lists the source
fields it comes from, with the transforms of both mappings and the canonical
field in between named. Row counts are ``inputStatistics`` /
``outputStatistics`` facets; all counts and the new dead letters are the
``crm2erp`` run facet.
"""

from __future__ import annotations

__all__ = ["dataset_id", "locate", "column_lineage", "file_client", "http_client", "Lineage"]

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    column_lineage_dataset,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    output_statistics_output_dataset,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport

from crm2erp import __version__
from crm2erp.errors import ConfigError
from crm2erp.mapping import MappingSpec, Project
from crm2erp.mapping.models import ConnectionSpec, FieldSpec
from crm2erp.redact import redact
from crm2erp.store import COUNT_FIELDS

log = logging.getLogger(__name__)

PRODUCER = f"urn:crm2erp:{__version__}"
JOB_NAMESPACE = "crm2erp"
_API_URL_KEYS = ("instance_url", "environment_url", "base_url", "url", "host")


# -- dataset names ---------------------------------------------------------
def _stream_settings(spec: ConnectionSpec, stream: str) -> dict[str, Any]:
    return dict((spec.settings.get("streams") or {}).get(stream) or {})


def _sql_dataset(spec: ConnectionSpec, stream: str) -> tuple[str, str]:
    from sqlalchemy.engine import make_url

    url = make_url(str(spec.settings["url"]))
    table = _stream_settings(spec, stream).get("table") or stream
    backend = url.get_backend_name()
    schema = spec.settings.get("schema")
    if backend == "sqlite":
        path = Path(url.database or ":memory:")
        path = path if url.database in (None, "", ":memory:") else path.resolve()
        return f"sqlite://{path}", f"{schema or 'main'}.{table}"
    if backend == "postgresql":
        return (f"postgres://{url.host or 'localhost'}:{url.port or 5432}",
                f"{url.database}.{schema or 'public'}.{table}")
    if backend in ("mysql", "mariadb"):
        return f"mysql://{url.host or 'localhost'}:{url.port or 3306}", f"{url.database}.{table}"
    port = f":{url.port}" if url.port else ""
    return f"{backend}://{url.host or ''}{port}", ".".join(
        p for p in (url.database, schema, table) if p)


def dataset_id(spec: ConnectionSpec, stream: str) -> tuple[str, str]:
    """(namespace, name) of a connection's stream, by OpenLineage naming conventions."""
    from urllib.parse import urlsplit

    if spec.type == "sql":
        return _sql_dataset(spec, stream)
    settings = _stream_settings(spec, stream)
    if spec.type == "file":
        base = Path(str(spec.settings.get("path", "."))).resolve()
        file = settings.get("file")
        return "file://", str(base / file if file else base)
    # APIs: the instance's host, and the object the stream reads/writes
    name = settings.get("sobject") or settings.get("resource") or stream
    for key in _API_URL_KEYS:
        value = spec.settings.get(key)
        if isinstance(value, str) and value:
            host = urlsplit(value if "://" in value else f"//{value}").netloc or value
            database = spec.settings.get("database")
            return f"{spec.type}://{host}", f"{database}.{name}" if database else name
    return f"{spec.type}://{spec.name}", name


def _key_fields(spec: ConnectionSpec, stream: str) -> list[str]:
    key = _stream_settings(spec, stream).get("key")
    if key:
        return [key] if isinstance(key, str) else list(key)
    return ["Id"] if spec.type == "salesforce" else ["id"]


Located = tuple[str, str, str]   # (dataset namespace, dataset name, field)


def locate(spec: ConnectionSpec, stream: str, path: str) -> Located:
    """Where a record field lives: a field of a SQL stream's child table
    (``lines.sku`` of ``deals`` with ``children: {lines: {table: deal_lines}}``)
    is the column ``sku`` of that table; any other field is ``path`` in the
    stream's own dataset."""
    namespace, name = dataset_id(spec, stream)
    head, _, rest = path.partition(".")
    children = _stream_settings(spec, stream).get("children") or {}
    child = children.get(head) if rest and spec.type == "sql" else None
    if isinstance(child, dict) and child.get("table"):
        prefix = name.rsplit(".", 1)[0] + "." if "." in name else ""
        return namespace, prefix + child["table"], rest
    return namespace, name, path


# -- column lineage -------------------------------------------------------
def _transform_names(field: FieldSpec) -> list[str]:
    return [item if isinstance(item, str) else next(iter(item)) for item in field.transforms]


def _flatten(mapping: MappingSpec) -> dict[str, tuple[list[str], list[str]]]:
    """Field path -> (the paths it is read from, transform names); ``each`` sub-fields
    become ``list.sub`` on both sides. Constant (``value:``) fields have no sources."""
    flat: dict[str, tuple[list[str], list[str]]] = {}
    for path, field in mapping.fields.items():
        if field.each is not None:
            for sub, inner in field.each.items():
                flat[f"{path}.{sub}"] = ([f"{field.from_}.{s}" for s in inner.sources],
                                         _transform_names(inner))
        else:
            flat[path] = (field.sources, _transform_names(field))
    return flat


def _canonical_inputs(canonical: str, inbound: dict[str, tuple[list[str], list[str]]],
                      key: list[str]) -> list[tuple[str, str, list[str]]]:
    """(source field, canonical field, inbound transforms) feeding ``canonical``."""
    if canonical == "id":
        return [(k, "id", ["crossref"]) for k in key]
    if canonical in inbound:
        sources, names = inbound[canonical]
        return [(s, canonical, names) for s in sources]
    # a whole object taken (billing_address) that the inbound mapping fills part by part
    parts = [(s, path, names) for path, (sources, names) in inbound.items()
             if path.startswith(canonical + ".") for s in sources]
    if parts:
        return parts
    # a part taken (address.city) of an object the inbound mapping fills whole
    for path, (sources, names) in inbound.items():
        if canonical.startswith(path + "."):
            rest = canonical[len(path):]
            return [(s + rest, canonical, names) for s in sources]
    return []


def column_lineage(inbound: MappingSpec, outbound: MappingSpec,
                   source: Callable[[str], Located], target: Callable[[str], Located],
                   key: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Column lineage per target dataset, (namespace, name) -> {field: Fields}:
    target field <- canonical field <- source fields, with both transform chains."""
    inbound_flat = _flatten(inbound)
    lineage: dict[tuple[str, str], dict[str, Any]] = {}
    for target_path, (canonicals, out_names) in _flatten(outbound).items():
        inputs = []
        for canonical in canonicals:
            for field, via, in_names in _canonical_inputs(canonical, inbound_flat, key):
                names = [*in_names, *out_names]
                description = (f"{field} -[{', '.join(in_names) or 'as is'}]-> canonical "
                               f"{inbound.entity}.{via} -[{', '.join(out_names) or 'as is'}]"
                               f"-> {target_path}")
                transformation = column_lineage_dataset.Transformation(
                    type="DIRECT", subtype="TRANSFORMATION" if names else "IDENTITY",
                    description=description, masking=False)
                namespace, name, column = source(field)
                inputs.append(column_lineage_dataset.InputField(
                    namespace=namespace, name=name, field=column,
                    transformations=[transformation]))
        if inputs:
            namespace, name, column = target(target_path)
            lineage.setdefault((namespace, name), {})[column] = \
                column_lineage_dataset.Fields(inputFields=inputs)
    return lineage


@attr.define
class Crm2erpRunFacet(RunFacet):
    """crm2erp's own run facet: the engine's run id, status, counts, new dead letters."""

    runId: int | None = attr.field(default=None)  # noqa: N815
    status: str = attr.field(default="running")
    partition: int | None = attr.field(default=None)
    counts: dict[str, int] = attr.field(factory=dict)
    newDeadLetters: int = attr.field(default=0)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return "urn:crm2erp:facet:crm2erp-run:1"  # described in docs/lineage.md


# -- clients --------------------------------------------------------------
def file_client(path: str | Path) -> OpenLineageClient:
    """A client appending one JSON event per line to ``path``."""
    return OpenLineageClient(transport=FileTransport(
        FileConfig(log_file_path=str(path), append=True)))


def http_client(url: str) -> OpenLineageClient:
    """A client POSTing each event to ``url``: a full endpoint URL, or a server's
    base URL to which the OpenLineage API path ``api/v1/lineage`` is added."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--lineage-url {url!r} is not an http:// or https:// URL")
    base = f"{parts.scheme}://{parts.netloc}"
    endpoint = parts.path.strip("/") or "api/v1/lineage"
    if parts.query:
        endpoint += f"?{parts.query}"
    return OpenLineageClient(transport=HttpTransport(HttpConfig(url=base, endpoint=endpoint)))


# -- events ---------------------------------------------------------------
class Lineage:
    """Emits the run events of a project's syncs through ``client``."""

    def __init__(self, client: OpenLineageClient, project: Project,
                 namespace: str = JOB_NAMESPACE) -> None:
        self.client, self.project, self.namespace = client, project, namespace

    def _datasets(self, flow_name: str, result: Any = None):
        flow = self.project.flow(flow_name)
        conns = self.project.connections
        src_spec, dst_spec = conns[flow.source.connection], conns[flow.target.connection]
        source = dataset_id(src_spec, flow.source.stream)
        target = dataset_id(dst_spec, flow.target.stream)
        lineage = column_lineage(
            self.project.mapping(flow.source_mapping_path),
            self.project.mapping(flow.target_mapping_path),
            lambda path: locate(src_spec, flow.source.stream, path),
            lambda path: locate(dst_spec, flow.target.stream, path),
            _key_fields(src_spec, flow.source.stream))
        counts = dict(result.counts) if result is not None else {}
        in_facets: dict[str, Any] = {}
        out_facets: dict[str, Any] = {}
        if result is not None:
            in_facets["inputStatistics"] = \
                input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                    rowCount=counts.get("read", 0))
            out_facets["outputStatistics"] = \
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=sum(counts.get(k, 0) for k in ("created", "updated", "deleted")))
        read_from = {(i.namespace, i.name) for fields in lineage.values()
                     for f in fields.values() for i in f.inputFields}
        inputs = [InputDataset(namespace=source[0], name=source[1], inputFacets=in_facets)]
        inputs += [InputDataset(namespace=ns, name=name)
                   for ns, name in sorted(read_from - {source})]
        written = [target, *sorted(set(lineage) - {target})]
        outputs = [OutputDataset(namespace=ns, name=name, facets={
            **(out_facets if (ns, name) == target else {}),
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                fields=lineage.get((ns, name), {}))}) for ns, name in written]
        if flow.write_back is not None:
            back = dataset_id(conns[flow.write_back.connection], flow.write_back.stream)
            outputs.append(OutputDataset(namespace=back[0], name=back[1]))
        return inputs, outputs

    def _emit(self, event: RunEvent) -> None:
        """Send ``event``; a lineage backend that fails is a warning, never a failed sync."""
        try:
            self.client.emit(event)
        except Exception as exc:   # the transports raise anything from OSError to HTTP errors
            log.warning("OpenLineage %s event of job %s was not sent: %s: %s",
                        event.eventType.value, event.job.name, type(exc).__name__,
                        redact(str(exc)))

    def _event(self, state: RunState, run_id: str, job: str, flow: str, run_facets: dict,
               result: Any = None) -> RunEvent:
        inputs, outputs = self._datasets(flow, result)
        job_facets = {"jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="CRM2ERP", jobType="SYNC")}
        return RunEvent(eventType=state, eventTime=dt.datetime.now(dt.UTC).isoformat(),
                        run=Run(runId=run_id, facets=run_facets),
                        job=Job(namespace=self.namespace, name=job, facets=job_facets),
                        inputs=inputs, outputs=outputs, producer=PRODUCER)

    @contextmanager
    def track(self, flow: str, partition: int | None = None) -> Iterator[dict[str, Any]]:
        """START now; COMPLETE (with counts from ``holder["result"]``) or FAIL at exit."""
        run_id = str(uuid.uuid4())  # the spec asks for a UUID; the engine's id is a facet
        job = flow if partition is None else f"{flow}.partition_{partition}"
        self._emit(self._event(RunState.START, run_id, job, flow, {}))
        holder: dict[str, Any] = {}
        try:
            yield holder
        except BaseException as exc:
            facets = {"errorMessage": error_message_run.ErrorMessageRunFacet(
                message=redact(f"{type(exc).__name__}: {exc}"), programmingLanguage="PYTHON")}
            self._emit(self._event(RunState.FAIL, run_id, job, flow, facets))
            raise
        result = holder.get("result")
        facets = {}
        if result is not None:
            facets["crm2erp"] = Crm2erpRunFacet(
                runId=result.run_id, status=result.status, partition=result.partition,
                counts={**dict.fromkeys(COUNT_FIELDS, 0), **result.counts},
                newDeadLetters=result.new_dead_letters)
        self._emit(self._event(RunState.COMPLETE, run_id, job, flow, facets, result))
