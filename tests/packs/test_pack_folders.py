"""Every shipped flow pack is a valid project out of the box (defaults point at emulators)."""

from __future__ import annotations

import pytest

from crm2erp.mapping import load_project, validate_project
from crm2erp.mappings import pack_dir

PACKS = {"salesforce-sap": ("salesforce", "sap"), "hubspot-tryton": ("hubspot", "tryton"),
         "dynamics-erpnext": ("dynamics", "erpnext"), "odoo-odoo": ("odoo", "odoo")}


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_pack_is_a_valid_project_that_reuses_the_system_mappings(pack):
    root = pack_dir(f"packs/{pack}")
    assert validate_project(root, env={}) == []
    project = load_project(root, env={})
    assert {c.type for c in project.connections.values()} == set(PACKS[pack])
    flows = project.flows
    assert len(flows) >= 2
    orders = [f for f in flows.values() if f.entity == "SalesOrder"]
    assert orders and all(f.depends_on for f in orders)
    # the system mappings are shared by relative path, not copied into the pack
    shared = [p for f in flows.values() for p in (f.source_mapping_path, f.target_mapping_path)
              if root not in p.parents]
    assert shared and all(p.exists() for p in shared)
