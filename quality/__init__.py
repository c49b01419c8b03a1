"""Data-quality tools: deduplication / entity resolution (:mod:`crm2erp.quality.dedupe`)."""

__all__: list[str] = []
