"""The state store: what crm2erp remembers between runs.

Runs and their counters, per-stream watermarks, the id cross-reference
between systems, dead letters, and per-flow locks, in SQLite (default),
PostgreSQL or MariaDB. Open it with :meth:`StateStore.open`; the schema is
migrated on open. See :mod:`crm2erp.store.state` for the API.
"""

from crm2erp.store.records import (
    BatchCommit,
    BatchResult,
    CanonicalState,
    ConflictRecord,
    DeadLetter,
    DeadLetterWrite,
    NewDeadLetter,
    RunRecord,
    XrefEntry,
    XrefUpsert,
)
from crm2erp.store.state import DEFAULT_URL, ENV_URL, StateStore
from crm2erp.store.tables import (
    COUNT_FIELDS,
    DEAD_LETTER_STATUSES,
    RUN_MODES,
    RUN_STATUSES,
)

__all__ = [
    "StateStore",
    "BatchCommit",
    "BatchResult",
    "CanonicalState",
    "ConflictRecord",
    "DeadLetter",
    "DeadLetterWrite",
    "NewDeadLetter",
    "RunRecord",
    "XrefEntry",
    "XrefUpsert",
    "DEFAULT_URL",
    "ENV_URL",
    "COUNT_FIELDS",
    "RUN_MODES",
    "RUN_STATUSES",
    "DEAD_LETTER_STATUSES",
]
