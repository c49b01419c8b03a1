"""Fields of all records, read once and held as integer codes into their distinct values.

A million records as Python strings per field cost a gigabyte; as ``int32``
codes plus one array of distinct values they cost a few megabytes per field
(plus the distinct values). Blocking keys, sort keys and comparisons all work
on codes.
"""

from __future__ import annotations

__all__ = ["Columns", "Factorised", "factorise"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crm2erp.quality.dedupe.transforms import apply, get_path


@dataclass
class Factorised:
    """A column as codes (``int32``, -1 = null) into its distinct values (first seen first)."""

    codes: np.ndarray
    uniques: np.ndarray   # object array


def factorise(values: Sequence[Any]) -> Factorised:
    """Codes into the distinct non-null values, in first-seen order."""
    index: dict[Any, int] = {}
    codes = np.fromiter((-1 if v is None else index.setdefault(v, len(index)) for v in values),
                        dtype=np.int32, count=len(values))
    uniques = np.empty(len(index), dtype=object)
    uniques[:] = list(index)
    return Factorised(codes, uniques)


class Columns:
    """The transformed fields of records, each read once.

    Records held column-wise may offer ``values_of(path)``, the raw values of
    one field for all records, so no record is built as a dict to read it.
    ``parts`` are read one after the other (link mode: the batch, then the
    existing records), so their values share one code space.
    """

    def __init__(self, *parts: Sequence[Mapping[str, Any]]):
        self.parts = parts
        self._codes: dict[tuple, np.ndarray] = {}

    def raw(self, path: str) -> list:
        """One field's values of all records, untransformed."""
        out: list = []
        for records in self.parts:
            values_of = getattr(records, "values_of", None)
            out.extend(values_of(path) if values_of else [get_path(r, path) for r in records])
        return out

    def factorised(self, path: str, transforms: Sequence[str]) -> Factorised:
        """The transformed field as codes and distinct values (not kept)."""
        found = factorise(self.values(path, transforms))
        self._codes.setdefault((path, tuple(transforms)), found.codes)
        return found

    def codes(self, path: str, transforms: Sequence[str]) -> np.ndarray:
        """The transformed field as codes only (kept until :meth:`release`): all a
        blocking key needs."""
        key = (path, tuple(transforms))
        if key not in self._codes:
            self._codes[key] = factorise(self.values(path, transforms)).codes
        return self._codes[key]

    def values(self, path: str, transforms: Sequence[str]) -> list:
        """The transformed field as a list (not kept)."""
        return apply(self.raw(path), list(transforms))

    def release(self) -> None:
        """Let the codes go (blocking is done)."""
        self._codes.clear()
