"""The Odoo (JSON-RPC) emulator: ``app`` serves it (``crm2erp emulator run odoo``)."""
