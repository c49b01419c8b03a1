"""The canonical model: every system maps to and from these pydantic models.

``ENTITIES`` names them for mappings and flows (``entity: Account``).
JSON Schemas for editors and other tools are generated into ``json/`` by
``crm2erp schemas export``; a test fails when the checked-in copies are stale.
"""

from __future__ import annotations

__all__ = [
    "Account", "AccountStatus", "AccountType", "Address", "CanonicalModel", "Contact",
    "Entity", "ENTITIES", "ForecastLine", "Invoice", "InvoiceLine", "InvoiceStatus",
    "Opportunity", "OpportunityLine", "OpportunityStage", "OrderStatus", "Payment", "Product",
    "SalesOrder", "SalesOrderLine", "entity_model", "export_json_schemas", "json_schema_dir",
]

import json
from pathlib import Path

from crm2erp.errors import ConfigError
from crm2erp.schemas.base import CanonicalModel, Entity
from crm2erp.schemas.commerce import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Opportunity,
    OpportunityLine,
    OpportunityStage,
    OrderStatus,
    Payment,
    Product,
    SalesOrder,
    SalesOrderLine,
)
from crm2erp.schemas.party import Account, AccountStatus, AccountType, Address, Contact
from crm2erp.schemas.planning import ForecastLine

ENTITIES: dict[str, type[Entity]] = {
    model.__name__: model
    for model in (Account, Contact, Product, Opportunity, SalesOrder, Invoice, Payment,
                  ForecastLine)
}


def entity_model(name: str) -> type[Entity]:
    try:
        return ENTITIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown entity {name!r}; canonical entities are: {', '.join(ENTITIES)}"
        ) from None


def json_schema_dir() -> Path:
    return Path(__file__).parent / "json"


def render_json_schemas() -> dict[str, str]:
    """File name -> JSON Schema text, for every canonical entity."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2,
                                          sort_keys=True) + "\n"
        for name, model in ENTITIES.items()
    }


def export_json_schemas(out_dir: Path | None = None) -> list[Path]:
    out_dir = Path(out_dir or json_schema_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render_json_schemas().items():
        path = out_dir / file_name
        path.write_text(text)
        written.append(path)
    return written
