"""The SAP S/4HANA (OData v2) emulator: ``app`` serves it (``crm2erp emulator run sap``)."""
