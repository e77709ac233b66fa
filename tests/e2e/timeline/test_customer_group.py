"""Customer group -> account type (issue 14 item 6): the Brightpearl price list maps through the
value map of mappings/customers.yaml to the Dynamics account's `customertypecode` and the
contact's `bpi_customergroup`; a price list the map lacks gets `customer_group.default_group`
and the audit row of the write flags it (reason UnknownCustomerGroup)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox.demo import shop_address, shop_contact
from shared.mapping.config import MappingError, load_customer_mapping
from shared.store import AuditResult
from tests.e2e.customers.conftest import ROOT, Sandbox

RETAIL, RESELLER = 3, 9  # account customertypecode options (reference dataverse-api.md §10.2)


def _contact(sb: Sandbox, last: str, company: str, price_list: int) -> int:
    state = sb.bp_sim.state
    with state.lock:
        address = state.create_address(shop_address("1 Quay St", "Bristol", "BS1 4DJ"))
        body = shop_contact("Kim", last, f"kim.{last.lower()}@example.org", None, address, company=company)
        body["financialDetails"] = {"priceListId": price_list}
        return int(state.create_contact(body))


def _dynamics(sb: Sandbox, bp_id: int) -> tuple[dict, dict]:
    contact = next(r for r in sb.dv_contacts() if r.get("bpi_brightpearlid") == str(bp_id))
    parent = contact.get("parentcustomerid") or contact.get("_parentcustomerid_value")
    parent_id = str(parent.get("id") if isinstance(parent, dict) else parent).lower()
    account = next(a for a in sb.dv.rows("account") if str(a["accountid"]).lower() == parent_id)
    return contact, account


def test_price_lists_map_to_account_type_and_an_unknown_one_gets_the_default_flagged(sandbox: Sandbox):
    sb = sandbox
    trade = _contact(sb, "Trader", "Trade Co", 2)  # Retail GBP list 2 -> group trade in the map
    euro = _contact(sb, "Euro", "Euro Co", 4)  # list 4 (Retail EUR) is not in the map
    sb.settle()

    contact, account = _dynamics(sb, trade)
    assert (account["customertypecode"], contact["bpi_customergroup"]) == (RESELLER, "Trade")
    contact, account = _dynamics(sb, euro)
    assert (account["customertypecode"], contact["bpi_customergroup"]) == (RETAIL, "Retail")  # default

    [entry] = [
        e
        for e in sb.store.audit.for_record("customer", "brightpearl", euro)
        if e.flow == "customers-to-dataverse" and e.result is AuditResult.SYNCED
    ]
    assert entry.reason_code == "UnknownCustomerGroup"
    assert "price list 4" in entry.description and "default group 'retail'" in entry.description
    assert not sb.dead_letters("brightpearl-changes", "customers-to-dataverse")
    [known] = [
        e
        for e in sb.store.audit.for_record("customer", "brightpearl", trade)
        if e.flow == "customers-to-dataverse" and e.result is AuditResult.SYNCED
    ]
    assert known.reason_code is None


def _mapping_with(tmp_path: Path, edit: dict) -> Path:
    data = yaml.safe_load((ROOT / "mappings" / "customers.yaml").read_text())
    data["customer_group"].update(edit)
    path = tmp_path / "customers.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_loader_refuses_an_unknown_default_group_and_an_option_the_column_lacks(tmp_path: Path):
    values = yaml.safe_load((ROOT / "mappings" / "customers.yaml").read_text())["customer_group"]["values"]
    values[0]["dataverse"]["customertypecode"] = 42
    with pytest.raises(MappingError) as caught:
        load_customer_mapping(_mapping_with(tmp_path, {"default_group": "platinum", "values": values}))
    problems = "\n".join(caught.value.problems)
    assert "customer_group.default_group: 'platinum' is not a group of customer_group.values" in problems
    assert (
        "customer_group.values[0].dataverse.customertypecode: 42 is not an option of customertypecode"
        in problems
    )


def test_the_mapped_account_types_are_options_the_dataverse_schema_declares():
    """The loader's option list (shared/mapping/columns.py) covers the simulator's declared option
    set, so every value the shipped map writes is one Dynamics accepts."""
    tables = yaml.safe_load((ROOT / "sandbox" / "dataverse" / "schema" / "tables.yaml").read_text())
    declared = {int(k) for k in tables["tables"]["account"]["columns"]["customertypecode"]["options"]}
    mapping = load_customer_mapping(ROOT / "mappings" / "customers.yaml")
    written = {row.dataverse["customertypecode"] for row in mapping.customer_group.values}
    assert written <= declared
    assert mapping.customer_group.default_group in {row.group for row in mapping.customer_group.values}
