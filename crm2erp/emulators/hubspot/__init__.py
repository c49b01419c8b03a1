"""The HubSpot CRM v3 emulator: ``app`` serves it (``crm2erp emulator run hubspot``)."""
