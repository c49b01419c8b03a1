"""Deduplication and entity resolution for plain-dict records.

Typical use::

    from crm2erp.quality.dedupe import Matcher, load_config

    matcher = Matcher(load_config("matching/accounts.yaml"))
    result = matcher.dedupe(records, rejected={("a-17", "a-92")})
    result.review_queue()      # pairs between the thresholds, fields side by side
    result.clusters            # entities (merged records)
    result.golden_records()    # survivorship per cluster, with provenance

See ``docs/dedupe.md`` for the YAML reference.
"""

from crm2erp.quality.dedupe.config import (
    Comparison,
    DeterministicRule,
    FieldExpr,
    MatchConfig,
    SurvivorshipConfig,
    dump_config,
    load_config,
    parse_config,
    preset,
)
from crm2erp.quality.dedupe.fellegi_sunter import FSParams
from crm2erp.quality.dedupe.matcher import Matcher
from crm2erp.quality.dedupe.results import Cluster, FieldScore, MatchResult, PairResult
from crm2erp.quality.dedupe.survivorship import GoldenRecord, survive

__all__ = [
    "Cluster",
    "Comparison",
    "DeterministicRule",
    "FSParams",
    "FieldExpr",
    "FieldScore",
    "GoldenRecord",
    "MatchConfig",
    "MatchResult",
    "Matcher",
    "PairResult",
    "SurvivorshipConfig",
    "dump_config",
    "load_config",
    "parse_config",
    "preset",
    "survive",
]
