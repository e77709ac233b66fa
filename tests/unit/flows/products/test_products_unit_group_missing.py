"""When the configured unit group itself is missing in Dynamics (and may not be created), the
dead-letter says so, naming `unit_group.name`, instead of blaming a unit of a group that does
not exist (found by tests/e2e/products: an administrator deleted the unit group)."""

from __future__ import annotations

from tests.unit.flows.products.test_products_to_dataverse import Rig, dead_letter, mapping_with


def test_a_missing_unit_group_is_named_as_missing() -> None:
    rig = Rig(mapping_with(unit_group={"name": "Shop Units", "create_if_missing": False}))
    bp_id = rig.product("MUG-1")

    outcome = dead_letter(rig.sync(bp_id))

    assert outcome.reason == "UnitNotResolved"
    assert "unit_group.name" in outcome.description
    assert "no unit group named 'Shop Units'" in outcome.description
    assert not rig.dv.tables["products"]


def test_a_unit_the_existing_group_lacks_still_names_the_unit() -> None:
    rig = Rig(mapping_with(unit_group={"name": "Shop Units", "create_if_missing": False}))
    rig.dv.add("uomschedules", {"name": "Shop Units"})
    bp_id = rig.product("MUG-1")

    outcome = dead_letter(rig.sync(bp_id))

    assert outcome.reason == "UnitNotResolved" and "unit_group.default_unit" in outcome.description
    assert "does not have" in outcome.description
