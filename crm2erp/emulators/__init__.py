"""The vendors' API emulators, each in its own package on one kernel.

:mod:`crm2erp.emulators.kernel` is what every emulator shares: the threaded
HTTP/1.1 keep-alive server, the record store with its test controls (seed,
logical clock, faults, counters) and the OData ``$filter`` parser. An emulator
package (``crm2erp.emulators.<system>``) holds only its routes and payload
shapes: ``app.py`` (the WSGI app and its ``main(argv)``, registered under the
``crm2erp.emulators`` entry point) and its store's schema and write rules.
Emulators are plug-ins: the core and the connectors never import them.
"""
