"""The emulator kernel: server, record store, fault controls, OData filter parser."""
