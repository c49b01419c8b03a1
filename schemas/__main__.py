"""``python -m crm2erp.schemas``: regenerate the JSON Schemas kept in this package
(for developers after changing a model; ``crm2erp schemas export`` writes elsewhere)."""

from crm2erp.schemas import export_json_schemas

for path in export_json_schemas():
    print(f"wrote {path}")
