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


@pytest.mark.parametrize("pack", ["demo", *(f"packs/{p}" for p in sorted(PACKS))])
def test_shipped_quality_rules_are_accepted_by_great_expectations(pack):
    """What `mappings validate` checks beyond the files: each rule built as the gate
    builds it. At least one shipped flow has rules, so the check has something to judge."""
    from crm2erp.quality.gx.rulecheck import rule_issues

    flows = load_project(pack_dir(pack), env={"CRM2ERP_DEMO_DIR": "/nowhere"}).flows.values()
    assert rule_issues(flows) == []
    if pack in ("demo", "packs/salesforce-sap"):
        assert any(f.quality and f.quality.rules for f in flows)
