"""Base classes of the canonical models."""

from __future__ import annotations

__all__ = ["CanonicalModel", "Entity"]

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from crm2erp.schemas.types import UtcDatetime


class CanonicalModel(BaseModel):
    """Every canonical model refuses unknown fields: custom fields go in ``extensions``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True,
                              validate_default=True)


class Entity(CanonicalModel):
    """A top-level record that has an identity of its own and can be synced."""

    #: parents that must be in the target before this entity: field -> entity
    parents: ClassVar[dict[str, str]] = {}

    id: str | None = Field(None, description="Canonical id, assigned by the engine "
                           "through the id cross-reference; mappings set it to the source id.")
    updated_at: UtcDatetime | None = Field(None, description="Last change in the source, UTC.")
    extensions: dict[str, Any] = Field(default_factory=dict, description=(
        "Custom fields that have no canonical home, by name. The only open dict "
        "in the model: everything else refuses unknown keys."))
