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

# Exports load on first use: the engine imports the stage factory of this
# package for every flow, and numpy, rapidfuzz and jellyfish (the `quality`
# extra) are only needed by flows that deduplicate.
import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Comparison": "config", "DeterministicRule": "config", "FieldExpr": "config",
    "MatchConfig": "config", "SurvivorshipConfig": "config", "dump_config": "config",
    "load_config": "config", "parse_config": "config", "preset": "config",
    "FSParams": "fellegi_sunter", "ImplausibleFit": "fellegi_sunter", "Matcher": "matcher",
    "Cluster": "results",
    "FieldScore": "results", "MatchResult": "results", "PairResult": "results",
    "GoldenRecord": "survivorship", "survive": "survivorship",
}

if TYPE_CHECKING:
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
    from crm2erp.quality.dedupe.fellegi_sunter import FSParams, ImplausibleFit
    from crm2erp.quality.dedupe.matcher import Matcher
    from crm2erp.quality.dedupe.results import Cluster, FieldScore, MatchResult, PairResult
    from crm2erp.quality.dedupe.survivorship import GoldenRecord, survive


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Cluster",
    "Comparison",
    "DeterministicRule",
    "FSParams",
    "FieldExpr",
    "FieldScore",
    "GoldenRecord",
    "ImplausibleFit",
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
