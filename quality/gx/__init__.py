"""Data quality with Great Expectations: rules and the batch gate.

Importing this package is cheap: Great Expectations itself (slow to import)
is loaded only by :mod:`crm2erp.quality.gx.suite` and the modules that
validate, when a flow with a ``quality:`` section actually runs.
"""

from crm2erp.quality.gx.config import QualityConfig, QualityRule
from crm2erp.quality.gx.errors import QualityGateError

__all__ = ["QualityConfig", "QualityRule", "QualityGateError"]
