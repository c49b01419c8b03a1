"""crm2erp: keeps CRM and ERP systems consistent.

The Python surface: the canonical models live in :mod:`crm2erp.schemas`,
connectors in :mod:`crm2erp.connectors`, the sync engine in
:mod:`crm2erp.engine`, the state store in :mod:`crm2erp.store`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
