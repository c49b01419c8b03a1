"""The matching configuration of one entity, as YAML-able pydantic models.

One :class:`MatchConfig` per entity (accounts, contacts...) says

* which candidate pairs to look at (``blocking``: several rules, unioned),
* which pairs link whatever their score (``deterministic`` rules),
* how to compare the fields of a pair (``comparisons``, each with ordered levels),
* the Fellegi-Sunter parameters (given, or estimated without labels by EM),
* what to do with a score (``thresholds``), how to cluster (``clustering``),
* and how to build the golden record (``survivorship``).

Every model forbids unknown keys so a typo in the YAML is an error, not a
silently ignored setting. :func:`load_config` turns validation errors into a
:class:`~crm2erp.errors.ConfigError` whose issues carry file, line and column.
"""

from __future__ import annotations

__all__ = [
    "FieldExpr",
    "Comparison",
    "DeterministicRule",
    "Thresholds",
    "ClusteringConfig",
    "EMConfig",
    "SurvivorshipConfig",
    "MatchConfig",
    "dump_config",
    "load_config",
    "parse_config",
    "preset",
    "PRESETS",
]

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crm2erp.errors import ConfigError, ConfigIssue
from crm2erp.quality.dedupe.transforms import check_transform

PRESETS = ("person", "account")

SIMILARITY_METHODS = {"jaro_winkler", "jaro", "token_set", "ratio"}
DISTANCE_METHODS = {"levenshtein", "damerau_levenshtein", "numeric", "date"}
NO_THRESHOLD_METHODS = {"exact", "phonetic", "email_domain", "tax_id"}
Method = Literal[
    "exact", "jaro_winkler", "jaro", "levenshtein", "damerau_levenshtein", "token_set",
    "ratio", "phonetic", "numeric", "date", "email_domain", "phone", "tax_id",
]
SurvivorshipRule = Literal[
    "source_priority", "most_recent", "most_complete", "longest", "most_frequent", "target"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldExpr(_Model):
    """One field of a record, optionally transformed (``soundex``, ``first:3``...).

    ``field`` may be a dotted path into nested dicts (``billing_address.city``).
    ``transform`` is one transform name or a list applied in order; the known
    names are listed in :data:`crm2erp.quality.dedupe.transforms.TRANSFORMS`.
    """

    field: str
    transform: str | list[str] | None = None

    @field_validator("transform")
    @classmethod
    def _known(cls, value: str | list[str] | None) -> str | list[str] | None:
        for name in [value] if isinstance(value, str) else value or []:
            check_transform(name)
        return value

    @property
    def transforms(self) -> list[str]:
        if self.transform is None:
            return []
        return [self.transform] if isinstance(self.transform, str) else list(self.transform)


def _expr_list(value: Any) -> Any:
    """Let a rule be written ``[surname, {field: dob}]`` as well as all-mappings."""
    if isinstance(value, list):
        return [{"field": item} if isinstance(item, str) else item for item in value]
    return value


class Comparison(_Model):
    """How one field of two records is compared, and its ordered levels.

    Levels run best first: ``exact`` (when ``exact_level``), one level per
    threshold, then ``else``; a pair with a null on either side gets the null
    level, which carries no evidence (weight 0). ``thresholds`` are minimum
    similarities in (0, 1] for jaro_winkler/jaro/token_set/ratio (descending), maximum
    edit distances for levenshtein/damerau_levenshtein, maximum absolute
    differences for numeric (or relative ones with ``relative: true``) and days
    for date (ascending). ``phone`` thresholds are suffix lengths (descending):
    ``[7]`` adds a level for "the last 7 digits agree".
    ``region_field`` (phone) names the record's country field (ISO code such as
    ``DE``, or a country name): numbers without a country code are read in
    that country, else in ``default_region``.
    ``tf_adjustment`` weighs exact agreement on a common value less and on a
    rare value more (term frequency, as Splink does; see
    :func:`crm2erp.quality.dedupe.fellegi_sunter.tf_adjustment`).
    ``m`` and ``u`` (one value per non-null level) fix the parameters instead
    of estimating them.
    """

    field: str
    name: str | None = None
    method: Method = "jaro_winkler"
    thresholds: list[float] = Field(default_factory=list)
    exact_level: bool = True
    transform: str | list[str] | None = None
    phonetic: Literal["soundex", "metaphone", "nysiis"] = "metaphone"
    relative: bool = False
    default_region: str | None = None
    region_field: str | None = None
    tf_adjustment: bool = False
    m: list[float] | None = None
    u: list[float] | None = None

    @field_validator("transform")
    @classmethod
    def _known(cls, value: str | list[str] | None) -> str | list[str] | None:
        for name in [value] if isinstance(value, str) else value or []:
            check_transform(name)
        return value

    @model_validator(mode="after")
    def _check_levels(self) -> Comparison:
        t = self.thresholds
        if self.method in NO_THRESHOLD_METHODS and t:
            raise ValueError(f"method {self.method!r} takes no thresholds; remove them")
        if self.method in SIMILARITY_METHODS or self.method == "phone":
            if self.method != "phone" and any(not 0 < x <= 1 for x in t):
                raise ValueError(f"{self.method} thresholds are similarities in (0, 1]")
            if t != sorted(t, reverse=True) or len(set(t)) != len(t):
                raise ValueError(f"{self.method} thresholds must be strictly descending")
        if self.method in DISTANCE_METHODS:
            if any(x < 0 for x in t) or t != sorted(t) or len(set(t)) != len(t):
                raise ValueError(f"{self.method} thresholds must be strictly ascending and >= 0")
        n = self.n_levels
        for key in ("m", "u"):
            values = getattr(self, key)
            if values is not None:
                if len(values) != n:
                    raise ValueError(f"{key} needs {n} values, one per level {self.level_labels}")
                if any(not 0 < v <= 1 for v in values):
                    raise ValueError(f"{key} probabilities must be in (0, 1]")
        return self

    @property
    def label(self) -> str:
        return self.name or self.field

    @property
    def transforms(self) -> list[str]:
        if self.transform is None:
            return []
        return [self.transform] if isinstance(self.transform, str) else list(self.transform)

    @property
    def level_labels(self) -> list[str]:
        """Human labels of the non-null levels, best first (for review UIs)."""
        labels = ["exact"] if self.exact_level or self.method == "exact" else []
        m = self.method
        for x in self.thresholds:
            if m in SIMILARITY_METHODS:
                labels.append(f"{m}>={x:g}")
            elif m == "phone":
                labels.append(f"last {int(x)} digits")
            elif m == "date":
                labels.append(f"within {x:g} days")
            elif m == "numeric":
                labels.append(f"within {x:g}{'' if not self.relative else ' (relative)'}")
            else:
                labels.append(f"{m}<={x:g}")
        if m == "phonetic":
            labels.append(f"same {self.phonetic}")
        elif m == "email_domain":
            labels.append("same domain")
        labels.append("else")
        return labels

    @property
    def n_levels(self) -> int:
        return len(self.level_labels)


class DeterministicRule(_Model):
    """Records whose values agree on every expression link, whatever the score."""

    name: str
    fields: list[FieldExpr]

    _lists = field_validator("fields", mode="before")(_expr_list)


class Thresholds(_Model):
    """Match-probability cut-offs: ``>= upper`` merges, ``>= lower`` goes to review."""

    upper: float = Field(0.99, gt=0, le=1)
    lower: float = Field(0.80, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.lower > self.upper:
            raise ValueError("thresholds.lower must not exceed thresholds.upper")
        return self


class ClusteringConfig(_Model):
    """Guards against chaining when merged pairs are joined into entities.

    Edges are added strongest first; an edge that would join two groups is
    skipped (and its pair sent to review) when the joined group would exceed
    ``max_cluster_size``, or would contain a rejected pair, or a pair that was
    compared directly and scored below ``min_pair_probability``.
    """

    max_cluster_size: int = Field(50, ge=2)
    min_pair_probability: float | None = Field(0.01, ge=0, le=1)


class EMConfig(_Model):
    """Unsupervised estimation of m and lambda on the candidate pairs, without labels.

    u comes from random pairs, never from EM (the exact level from value
    frequencies, the lower levels from ``min(u_sample_size, max(10_000, 10 *
    records))`` random pairs); EM estimates m and lambda with every level kept
    monotone (``m >= u`` on agreement levels) and lambda within
    ``[min_lambda, max_lambda]``. A fit whose lambda reaches ``max_lambda``,
    or in which no comparison carries evidence, is refused. ``fix_u: false``
    lets EM refine u on the candidate pairs as well (recordlinkage's ECM);
    kept for comparison, not recommended. ``training_blocking`` (default: the
    blocking rules) are the rules whose pairs train m, one EM session each:
    narrow rules rich in matches (same phone, same e-mail) train well; a wide
    rule in which 1 pair in 100 is a match lets EM split by whatever else the
    pairs share.
    """

    u_sample_size: int = Field(50_000, ge=1000)
    max_iterations: int = Field(100, ge=1)
    tolerance: float = Field(1e-5, gt=0)
    seed: int = 42
    fix_u: bool = True
    min_lambda: float = Field(1e-6, gt=0, lt=1)
    max_lambda: float = Field(0.95, gt=0, lt=1)
    training_blocking: list[list[FieldExpr]] | None = None

    @field_validator("training_blocking", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        return [_expr_list(rule) for rule in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _bounds(self) -> EMConfig:
        if self.min_lambda >= self.max_lambda:
            raise ValueError("em.min_lambda must be below em.max_lambda")
        return self


class SurvivorshipConfig(_Model):
    """Per-field rules that pick the golden record's value from a cluster.

    ``identifiers`` (VAT id, customer number...) are never overwritten by a
    different value: unless a field rule says otherwise they follow ``target``
    (the target system's record, ``target_source``, else the earliest record),
    and differing values are reported as conflicts.
    """

    default: SurvivorshipRule = "most_complete"
    fields: dict[str, SurvivorshipRule] = Field(default_factory=dict)
    source_field: str = "_source"
    timestamp_field: str = "updated_at"
    source_priority: list[str] = Field(default_factory=list)
    identifiers: list[str] = Field(default_factory=lambda: ["tax_id", "customer_number"])
    target_source: str | None = None

    def rule_for(self, name: str) -> SurvivorshipRule:
        """The field's rule: its own, ``target`` for an identifier, else the default."""
        return self.fields.get(name, "target" if name in self.identifiers else self.default)


class MatchConfig(_Model):
    """Everything needed to deduplicate or link the records of one entity."""

    entity: str
    id_field: str = "id"
    blocking: list[list[FieldExpr]] = Field(min_length=1)
    max_block_size: int = Field(2000, ge=2)
    window: int = Field(20, ge=2)
    deterministic: list[DeterministicRule] = Field(default_factory=list)
    comparisons: list[Comparison] = Field(min_length=1)
    lambda_: float | None = Field(None, alias="lambda", gt=0, lt=1)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    clustering: ClusteringConfig = Field(default_factory=ClusteringConfig)
    # link mode: ``one_to_one`` lets each record match at most one record of the other
    # side, best pair first (two sources of distinct records: CRM to ERP)
    link: Literal["many", "one_to_one"] = "many"
    em: EMConfig = Field(default_factory=EMConfig)
    survivorship: SurvivorshipConfig = Field(default_factory=SurvivorshipConfig)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("blocking", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        return [_expr_list(rule) for rule in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _unique_names(self) -> MatchConfig:
        labels = [c.label for c in self.comparisons]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"comparison names must be unique; give {dupes} a distinct 'name'")
        return self

    @property
    def fitted(self) -> bool:
        """True when every m, u and lambda is given, so no estimation is needed."""
        return self.lambda_ is not None and all(
            c.m is not None and c.u is not None for c in self.comparisons
        )


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """Walk a composed YAML tree along a pydantic error location."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == part or (part == "lambda_" and
                                                                    k.value == "lambda")]
            if not match:
                return node
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def parse_config(text: str, source: str = "<string>") -> MatchConfig:
    """Validate YAML text; errors carry the line and column of the offending key."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        issue = ConfigIssue(source, mark.line + 1 if mark else None,
                            mark.column + 1 if mark else None, str(exc))
        raise ConfigError(f"{source} is not valid YAML; fix the syntax", [issue]) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping with 'entity', 'blocking', 'comparisons'",
                          [ConfigIssue(source, 1, 1, "expected a mapping at the top level")])
    try:
        return MatchConfig.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            node = _node_at(root, tuple(err["loc"]))
            line = node.start_mark.line + 1 if node is not None else None
            col = node.start_mark.column + 1 if node is not None else None
            where = ".".join(str(p) for p in err["loc"])
            issues.append(ConfigIssue(source, line, col, f"{where}: {err['msg']}"))
        raise ConfigError(f"invalid matching configuration in {source}", issues) from exc


def load_config(path: str | Path) -> MatchConfig:
    """Read and validate a matching YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read matching config {path}: {exc.strerror}; check the path",
                          [ConfigIssue(str(path), None, None, str(exc))]) from exc
    return parse_config(text, str(path))


def dump_config(config: MatchConfig) -> str:
    """YAML text of a configuration (e.g. after :meth:`Matcher.fitted_config`)."""
    data = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def preset(name: str) -> MatchConfig:
    """A shipped default configuration: ``person`` (FEBRL-like people) or ``account``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown matching preset {name!r}; use one of {', '.join(PRESETS)}")
    ref = resources.files("crm2erp.quality.dedupe").joinpath(f"presets/{name}.yaml")
    return parse_config(ref.read_text(encoding="utf-8"), f"preset:{name}")
