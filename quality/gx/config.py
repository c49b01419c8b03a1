"""The ``quality:`` section of a flow (defined in :mod:`crm2erp.mapping.quality`)."""

from crm2erp.mapping.quality import (
    PARENT_RULE,
    SEVERITIES,
    SHORT_NAMES,
    QualityConfig,
    QualityRule,
    QualitySection,
    parse_share,
)

__all__ = ["QualityConfig", "QualityRule", "QualitySection", "SEVERITIES", "SHORT_NAMES",
           "PARENT_RULE", "parse_share"]
