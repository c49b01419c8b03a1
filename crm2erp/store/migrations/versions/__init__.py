"""Migration scripts of the state store (one file per revision)."""
