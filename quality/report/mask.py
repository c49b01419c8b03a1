"""Masking of PII in reports: the fields a flow's ``quality.mask`` names.

A masked canonical field is masked under every name it has: its canonical
path (``email``, ``billing_address.postal_code``), the source fields its
inbound mapping reads and the target fields its outbound mapping writes. The
first character stays, so a steward can still tell values apart.
"""

from __future__ import annotations

__all__ = ["Masker", "mask_value"]

from typing import Any


def mask_value(value: Any) -> Any:
    """``"jane@example.com"`` -> ``"j***@example.com"``; ``"+4930123"`` -> ``"+***"``."""
    if value is None or value == "":
        return value
    text = str(value)
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{text[:1]}***"


class Masker:
    """Masks the values of a set of field names (compared case-insensitively)."""

    def __init__(self, fields: set[str]):
        self.fields = {f.lower() for f in fields}

    @classmethod
    def for_flow(cls, flow, mappings=()) -> Masker:
        config = getattr(flow, "quality", None) if flow is not None else None
        canonical = set(config.mask) if config is not None else set()
        names = set(canonical)
        for spec in mappings:
            for target, field_spec in spec.fields.items():
                sources = set(field_spec.sources)
                if spec.direction == "inbound" and target in canonical:
                    names |= sources
                elif spec.direction == "outbound" and sources & canonical:
                    names.add(target)
        return cls(names)

    def masks(self, name: str | None) -> bool:
        if not name or not self.fields:
            return False
        lowered = name.lower()
        return lowered in self.fields or lowered.rsplit(".", 1)[-1] in self.fields

    def value(self, name: str | None, value: Any) -> Any:
        return mask_value(value) if self.masks(name) else value

    def row(self, row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in row.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                out[key] = self.row(value, path + ".")
            elif isinstance(value, list):
                out[key] = [self.row(v, path + ".") if isinstance(v, dict) else
                            self.value(path, v) for v in value]
            else:
                out[key] = self.value(path, value)
        return out
