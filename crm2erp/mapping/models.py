"""pydantic models of the three YAML file kinds: mapping, flow, connections.

Every model forbids unknown keys so a misspelt key is an error at its
position instead of a silently ignored setting. Models hold no positions
themselves; the loader keeps the :class:`~crm2erp.mapping.yamlpos.YamlDoc`
next to them (private ``_doc``) so later checks (transform arguments, cross
references) can still point at a line.
"""

from __future__ import annotations

__all__ = [
    "CANONICAL_ENTITIES",
    "Condition",
    "FieldSpec",
    "MappingSpec",
    "Endpoint",
    "Incremental",
    "WriteBack",
    "Schedule",
    "FlowSpec",
    "DedupeSection",
    "DedupeTarget",
    "DedupeSurvivorship",
    "ForecastSection",
    "ConnectionEntry",
    "ConnectionsFile",
    "ConnectionSpec",
    "parse_duration",
]

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from crm2erp.configtypes import Duration, parse_duration
from crm2erp.contract import CursorType
from crm2erp.mapping.conditions import Condition
from crm2erp.mapping.quality import QualitySection
from crm2erp.mapping.yamlpos import YamlDoc
from crm2erp.schemas import ENTITIES

CANONICAL_ENTITIES = tuple(ENTITIES)

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _transform_item(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, dict) and len(value) == 1):
        return value
    raise ValueError("expected a transform name or a one-key mapping {name: args}")


TransformItem = Annotated[str | dict[str, Any], BeforeValidator(_transform_item)]


class FieldSpec(_Strict):
    """How one target field is produced. Exactly one of ``from``/``value``."""

    from_: str | list[str] | None = Field(default=None, alias="from")
    value: Any = None
    transforms: list[TransformItem] = Field(default_factory=list)
    when: Condition | None = None
    default: Any = None
    required: bool = False
    each: dict[str, FieldSpec] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        has_from = "from_" in self.model_fields_set
        has_value = "value" in self.model_fields_set
        if has_from == has_value:
            raise ValueError("give exactly one of 'from' (source field) or 'value' (constant)")
        if isinstance(self.from_, list) and not self.from_:
            raise ValueError("'from' lists at least one source field")
        if self.each is not None and self.transforms:
            raise ValueError("'each' and 'transforms' do not mix; put transforms inside 'each'")
        if self.each is not None and not has_from:
            raise ValueError("'each' needs 'from' naming the source list")
        return self

    @property
    def sources(self) -> list[str]:
        if self.from_ is None:
            return []
        return [self.from_] if isinstance(self.from_, str) else list(self.from_)

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set


class _WithFile(_Strict):
    _doc: YamlDoc | None = PrivateAttr(default=None)
    _source_file: Path | None = PrivateAttr(default=None)

    @property
    def source_file(self) -> Path | None:
        """The file this was loaded from (None when built in code)."""
        return self._source_file

    @property
    def doc(self) -> YamlDoc:
        """The YAML document this was loaded from, to report issues at their position."""
        if self._doc is None:
            raise ValueError(f"this {type(self).__name__} was built in code, not loaded "
                             "from a file: it has no positions")
        return self._doc


class MappingSpec(_WithFile):
    mapping: Name
    direction: Literal["inbound", "outbound"]
    entity: Literal[CANONICAL_ENTITIES]  # type: ignore[valid-type]
    description: str = ""
    where: Condition | None = None
    fields: dict[str, FieldSpec] = Field(min_length=1)

    @property
    def name(self) -> str:
        return self.mapping


def _check_webhook(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"expected an http:// or https:// webhook URL, got {value!r}")
    return value


WebhookUrl = Annotated[str, AfterValidator(_check_webhook)]


class Endpoint(_Strict):
    connection: Name
    stream: str = Field(min_length=1)
    mapping: str = Field(min_length=1, description="path of a *.map.yaml, relative to the flow")


class Incremental(_Strict):
    cursor: str = Field(min_length=1)
    type: Literal["timestamp", "date", "integer", "number", "string"] | None = Field(
        default=None, description=(
            "how cursor values are parsed and ordered; a value that does not parse is "
            "dead-lettered and never becomes the watermark. Default: the column's type "
            "(SQL), numbers and ISO-8601 timestamps (files). 'string' orders as text"))
    format: str | None = Field(default=None, description=(
        "strptime format of timestamp/date cursors that are not ISO-8601, "
        "e.g. '%m/%d/%Y %H:%M'"))
    lookback: Duration = dt.timedelta(0)
    batch_size: int = Field(default=500, gt=0)

    @model_validator(mode="after")
    def _format_fits_type(self) -> Incremental:
        if self.format is None:
            return self
        if self.type not in ("timestamp", "date"):
            raise ValueError("'format' needs 'type: timestamp' or 'type: date'")
        sample = dt.datetime(2001, 2, 3, 4, 5, 6)
        try:
            dt.datetime.strptime(sample.strftime(self.format), self.format)
        except ValueError as exc:
            raise ValueError(f"format {self.format!r} is not a strptime format ({exc})") \
                from None
        if "%" not in self.format:
            raise ValueError(f"format {self.format!r} has no % directive such as %Y")
        return self

    @property
    def cursor_type(self) -> CursorType:
        return CursorType(self.type or "auto", self.format)


class Partitions(_Strict):
    """Split one flow's sync into ``count`` independent slices by a hash of the
    source key, so several workers can run them in parallel (Airflow fans out
    one task per slice). Each slice has its own lock and watermark."""

    count: int = Field(ge=2, le=256)
    by: Literal["key_hash"] = "key_hash"


class WriteBack(_Strict):
    connection: Name
    stream: str = Field(min_length=1)
    field: str = Field(min_length=1)


class Schedule(_Strict):
    """Run when other flows have produced, instead of by the clock.

    ``assets`` names flows (or full asset URIs such as ``crm2erp://flow/x``);
    under Airflow the flow's DAG is scheduled on those flows' assets, so a
    return flow runs right after the flow it follows has written.
    """

    assets: list[str] = Field(min_length=1)


SurvivorshipRuleName = Literal[
    "source_priority", "most_recent", "most_complete", "longest", "most_frequent"]


class DedupeTarget(_Strict):
    """Also match against records of the target the integration never wrote."""

    mapping: str = Field(min_length=1, description=(
        "inbound *.map.yaml (relative to the flow) from the flow's target stream to the "
        "flow's entity; the target stream is read once per run"))


class DedupeSurvivorship(_Strict):
    """Overrides of the matching configuration's survivorship rules."""

    default: SurvivorshipRuleName | None = None
    fields: dict[str, SurvivorshipRuleName] = Field(default_factory=dict)
    source_priority: list[str] | None = Field(default=None, description=(
        "connection names, most trusted first"))


class DedupeSection(_Strict):
    """Deduplication of a flow's records before the load (see docs/dedupe.md)."""

    preset: Literal["account", "person"] | None = Field(default=None, description=(
        "a shipped matching configuration"))
    config: str | None = Field(default=None, description=(
        "a matching configuration file (crm2erp.quality.dedupe YAML), relative to the flow"))
    existing: bool = Field(default=True, description=(
        "also match against the records already synced (the hub's canonical records)"))
    target: DedupeTarget | None = None
    review: Literal["park", "pass"] = Field(default="park", description=(
        "a pair between the thresholds: park the record until a steward decides, or "
        "pass it on as a distinct record and only queue the pair for review"))
    survivorship: DedupeSurvivorship | None = None
    link: Literal["many", "one_to_one"] | None = Field(default=None, description=(
        "override the matching configuration's link mode: one_to_one lets a record "
        "merge with at most one existing record, best pair first"))

    @model_validator(mode="after")
    def _one_config(self) -> DedupeSection:
        if (self.preset is None) == (self.config is None):
            raise ValueError("give exactly one of 'preset' (account, person) or 'config' "
                             "(a matching YAML file)")
        return self


class ForecastSection(_Strict):
    """Turn opportunities into demand per product and month (see docs/forecast.md).

    The flow's source mapping maps the source to ``from_entity``; the flow's
    entity is ``ForecastLine``. Every run reads the whole source.
    """

    from_entity: Literal["Opportunity"] = "Opportunity"
    stages: list[Literal["open", "won", "lost"]] = Field(default=["open"], min_length=1,
                                                         description=(
        "opportunity stages that count; won deals are usually sales orders already"))
    weight: Literal["probability", "none"] = Field("probability", description=(
        "probability: line quantity x probability / 100 (no probability: not counted); "
        "none: the full quantity"))
    period: Literal["month"] = "month"
    horizon_months: int = Field(12, ge=1, le=120, description=(
        "months planned, the current one first; later close dates are left out"))
    overdue: Literal["current_month", "ignore"] = Field("current_month", description=(
        "open deals whose close date has passed: count them in the current month, or not"))
    warehouse: str | None = Field(None, description=(
        "warehouse (plant) code written on every line; none: the ERP's default"))
    uom: str | None = Field(None, description=(
        "unit of measure written on every line; none: each product's default unit"))


class FlowSpec(_WithFile):
    flow: Name
    description: str = ""
    entity: Literal[CANONICAL_ENTITIES]  # type: ignore[valid-type]
    source: Endpoint
    target: Endpoint
    incremental: Incremental | None = None
    partitions: Partitions | None = None
    delete_policy: Literal["ignore", "archive", "delete"] = "ignore"
    depends_on: list[Name] = Field(default_factory=list)
    write_back: WriteBack | None = None
    schedule: str | Schedule | None = Field(
        default=None, description="cron or preset ('@hourly'), or {assets: [flow, ...]}")
    tags: list[str] = Field(default_factory=list)
    owner: str | None = None
    enabled: bool = True
    quality: QualitySection = None
    dedupe: DedupeSection | None = None
    ownership: dict[str, str] = Field(default_factory=dict, description=(
        "Canonical field (dotted path; a parent path covers its children) -> the "
        "connection whose edits win. Edits by another system are conflicts: logged, "
        "and settled by `conflict_rule`."))
    conflict_rule: Literal["ownership", "last_modified"] = Field("ownership", description=(
        "ownership: the owner's value stays. last_modified: the later edit wins "
        "(by the record's updated_at), also for fields without an owner."))
    forecast: ForecastSection | None = None
    timeout: Duration | None = Field(None, description=(
        "Longest one sync may run, e.g. '30m' or '2h'; under Airflow the sync task's "
        "execution_timeout (the task fails and is retried when it is exceeded)."))
    on_dead_letters: WebhookUrl | None = Field(None, description=(
        "Webhook URL (http/https) that gets a small JSON POST when a run ends with new "
        "dead letters or is stopped by a quality threshold; with a project gx/ folder, the "
        "flow's Checkpoint also POSTs there once per run when a batch fails a check."))

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        if value is not None and value <= dt.timedelta(0):
            raise ValueError("timeout must be longer than 0, e.g. '30m'")
        return value

    @model_validator(mode="after")
    def _forecast_fits(self) -> FlowSpec:
        if self.forecast is None:
            return self
        if self.entity != "ForecastLine":
            raise ValueError(f"a flow with 'forecast' produces ForecastLine records; set "
                             f"'entity: ForecastLine' (not {self.entity!r}) and map the "
                             f"source to {self.forecast.from_entity} in the source mapping")
        clashing = [name for name in ("partitions", "write_back", "dedupe")
                    if getattr(self, name) is not None]
        if clashing:
            raise ValueError(f"a forecast flow sums over the whole source; remove "
                             f"{', '.join(clashing)}")
        return self

    @property
    def name(self) -> str:
        return self.flow

    def _resolve(self, rel: str) -> Path:
        base = self._source_file.parent if self._source_file else Path.cwd()
        return (base / rel).resolve()

    @property
    def source_mapping_path(self) -> Path:
        """Absolute path of the source (inbound) mapping file."""
        return self._resolve(self.source.mapping)

    @property
    def target_mapping_path(self) -> Path:
        """Absolute path of the target (outbound) mapping file."""
        return self._resolve(self.target.mapping)


class ConnectionEntry(BaseModel):
    """One connection: ``type`` plus settings the connector validates itself."""

    model_config = ConfigDict(extra="allow")
    type: Name
    airflow_conn_id: str | None = Field(
        default=None, description="under Airflow, take the settings (credentials) from this "
        "Airflow Connection instead of the ${ENV} values")


class ConnectionsFile(_Strict):
    connections: dict[Name, ConnectionEntry]


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)
    source_file: Path | None = None
    line: int | None = None
    airflow_conn_id: str | None = None


class ProjectFile(_Strict):
    """``crm2erp.yaml`` beside ``connections.yaml``: settings every command of the
    project shares."""

    state: str | None = Field(None, min_length=1, description=(
        "State store URL for this project (a --state option or CRM2ERP_STATE_URL "
        "still wins), e.g. sqlite:///path/to/state.db"))
