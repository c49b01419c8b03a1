"""The error a breached quality threshold raises (defined in :mod:`crm2erp.errors`)."""

from __future__ import annotations

__all__ = ["QualityGateError"]

from crm2erp.errors import QualityGateError
