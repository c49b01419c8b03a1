"""What the steward report needs outside the console: the PII mask and the folder.

The report pages themselves are the console's (:mod:`crm2erp.console.export`,
written after every run by its hook ``write_run_report``).
"""

from crm2erp.quality.report.mask import Masker, mask_value
from crm2erp.quality.report.paths import ENV_REPORTS, reports_dir

__all__ = ["Masker", "mask_value", "reports_dir", "ENV_REPORTS"]
