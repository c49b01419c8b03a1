"""The transform registry with every built-in transform registered.

Import from here: ``transform`` registers a new one, ``get_transform`` and
``transform_names`` look them up. The built-ins live in ``builtin_*``
modules, grouped by kind (text, numbers, dates, look-ups).
"""

from __future__ import annotations

__all__ = [
    "Args",
    "NoArgs",
    "TransformContext",
    "TransformDef",
    "transform",
    "get_transform",
    "transform_names",
]

from crm2erp.mapping import builtin_dates, builtin_numbers, builtin_refs, builtin_text  # noqa: F401
from crm2erp.mapping.registry import (
    Args,
    NoArgs,
    TransformContext,
    TransformDef,
    get_transform,
    transform,
    transform_names,
)
