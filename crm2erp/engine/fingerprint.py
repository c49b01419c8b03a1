"""What makes a source row "already synced": its hash together with the flow's.

A source record's xref entry keeps :func:`source_hash` of the row as read and of
the flow's definition; an equal hash on the next read means the same row went
through the same flow and mappings, so a ``--full-refresh`` skips it before
mapping. A changed mapping changes :func:`flow_fingerprint` and with it every hash.
"""

from __future__ import annotations

__all__ = ["flow_fingerprint", "source_hash"]

from crm2erp import __version__
from crm2erp.contract import Row
from crm2erp.jsonutil import dumps, payload_hash, text_hash
from crm2erp.mapping.compiler import CompiledMapping
from crm2erp.mapping.models import FlowSpec


def source_hash(fingerprint: str, row: Row) -> str:
    """The hash of ``row`` as read, under the flow ``fingerprint``."""
    return text_hash(fingerprint + dumps(row))


def flow_fingerprint(flow: FlowSpec, inbound: CompiledMapping,
                     outbound: CompiledMapping) -> str:
    """A hash of what a record's way through the flow depends on: the flow, both
    mappings and the crm2erp version. A changed mapping changes it, so a
    ``--full-refresh`` after the change maps every record again."""
    return payload_hash({"flow": flow.model_dump(mode="json"),
                         "inbound": inbound.spec.model_dump(mode="json"),
                         "outbound": outbound.spec.model_dump(mode="json"),
                         "version": __version__})[:16]
