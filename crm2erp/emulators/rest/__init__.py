"""The generic ERP REST emulator: ``app`` serves it (``crm2erp emulator run rest``)."""
