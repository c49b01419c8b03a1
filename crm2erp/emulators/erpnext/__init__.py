"""The ERPNext (Frappe REST) emulator: ``app`` serves it (``crm2erp emulator run erpnext``)."""
