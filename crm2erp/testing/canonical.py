"""Helpers for tests of mapping packs: read a connector's streams, map them, validate.

A pack test reads records from an emulator, applies the pack's inbound
mappings and checks that every result is a valid canonical record; these
helpers are that common part, so each test keeps only its own assertions.
"""

from __future__ import annotations

__all__ = ["read_rows", "read_streams", "canonical_records"]

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from crm2erp.contract import Connector, Row
from crm2erp.mapping import CompiledMapping
from crm2erp.schemas import entity_model


def read_rows(connector: Connector, stream: str, **options: Any) -> list[Row]:
    """Every row of ``stream`` (a full read), batches flattened."""
    return [row for batch in connector.read(stream, **options) for row in batch.rows]


def read_streams(connector: Connector, streams: Iterable[str]) -> dict[str, list[Row]]:
    """``{stream: rows}`` for each stream named (duplicates read once)."""
    return {stream: read_rows(connector, stream) for stream in set(streams)}


def canonical_records(mapping: CompiledMapping, rows: Sequence[Row],
                      resolver: Any = None) -> list[BaseModel]:
    """``rows`` through an inbound ``mapping``, each validated by its entity's model.

    A row the mapping or the model refuses raises, naming the problem.
    """
    model = entity_model(mapping.spec.entity)
    return [model.model_validate(mapping.apply(row, resolver)) for row in rows]
