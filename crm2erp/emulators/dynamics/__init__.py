"""The Dynamics 365 (Dataverse Web API) emulator;
``app`` serves it (``crm2erp emulator run dynamics``)."""
