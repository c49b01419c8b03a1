"""The Salesforce REST and Bulk API 2.0 emulator;
``app`` serves it (``crm2erp emulator run salesforce``)."""
