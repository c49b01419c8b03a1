"""The error a breached quality threshold raises."""

from __future__ import annotations

__all__ = ["QualityGateError"]

from crm2erp.errors import FatalError


class QualityGateError(FatalError):
    """Critical quality failures exceeded the flow's threshold.

    Raised by the quality stage before the batch is written, so nothing of
    it reaches the target; the run ends ``failed`` and the report says why.
    """

    def __init__(self, message: str, *, flow: str, share: float, threshold: float):
        super().__init__(message)
        self.flow = flow
        self.share = share
        self.threshold = threshold
