"""mappings/orders.yaml and order_status.yaml: the shipped files are valid, and every problem
is named by its YAML path (the status file's prefixed with its name)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from shared.mapping.config import MappingError
from shared.mapping.orders_config import DEFAULT_PATH, parse_order_mapping, read_order_mapping
from shared.mapping.orders_status import parse_order_status_mapping
from shared.quality.issues import IssueCode, QualityIssue


def _problems(data: object) -> list[str]:
    with pytest.raises(MappingError) as exc:
        parse_order_mapping(data)
    return exc.value.problems


def _status_problems(data: object) -> list[str]:
    with pytest.raises(MappingError) as exc:
        parse_order_status_mapping(data)
    return exc.value.problems


def test_the_shipped_files_are_valid_with_the_documented_defaults():
    mapping = read_order_mapping(DEFAULT_PATH)
    assert mapping.trigger.when == "submit" and not mapping.trigger.opportunity_won
    assert mapping.unknown_sku.action == "dead_letter"
    assert mapping.brightpearl.price_mode == "EXC"
    statuses = mapping.statuses
    assert statuses.target(None, "awaiting payment") is not None
    assert statuses.dataverse_state(None, "Partially Shipped", order_id="x", order_number="O1") == (1, 3)
    assert statuses.dataverse_state(None, "Shipped", order_id="x", order_number="O1") == (3, 100001)


def test_structure_errors_name_the_yaml_path():
    problems = _problems({"trigger": {"when": "sometimes"}, "brightpearl": {"price_mode": "GROSS"}})
    assert any(p.startswith("trigger.when:") for p in problems)
    assert any(p.startswith("brightpearl.price_mode:") for p in problems)


def test_meaning_errors_name_the_yaml_path():
    problems = _problems(
        {
            "shipping_methods": {9: 3},
            "discount": {"order_level": "row"},
            "unknown_sku": {"action": "wait"},
            "tax": {"codes": {120: "T120"}},
        }
    )
    assert any(p.startswith("shipping_methods.9: not a shippingmethodcode option") for p in problems)
    assert "discount.nominal_code: order_level row needs the discount row's nominal code" in problems
    assert any(p.startswith("unknown_sku.wait_minutes:") for p in problems)
    assert any(p.startswith("tax.codes.120:") for p in problems)


def test_a_status_pair_dynamics_does_not_allow_is_named_by_its_path():
    problems = _status_problems(
        {"statuses": {"Shipped": {"statecode": 3, "statuscode": 3}, "Odd": {"statecode": 9, "statuscode": 1}}}
    )
    assert any(
        p.startswith("statuses.Shipped.statuscode: 3 is not a status of statecode 3") for p in problems
    )
    assert any(p.startswith("statuses.Odd.statecode: 9 is not a salesorder statecode") for p in problems)


def test_a_status_id_mapped_twice_and_names_differing_only_in_case_are_refused():
    problems = _status_problems(
        {
            "statuses": {
                "New": {"id": 1, "statecode": 0, "statuscode": 1},
                "new": {"id": 1, "statecode": 0, "statuscode": 2},
            }
        }
    )
    assert any(p.startswith("statuses.new.id: status id 1 is already mapped by New") for p in problems)
    assert any(p.startswith("statuses.new: the same status name as New") for p in problems)


def test_a_status_the_file_lacks_is_status_not_mapped_naming_status_and_order():
    statuses = parse_order_status_mapping(
        {"statuses": {"Shipped": {"id": 7, "statecode": 3, "statuscode": 100001}}}
    )
    assert statuses.dataverse_state(7, "Renamed", order_id="o", order_number="ORD-9") == (3, 100001)
    issue = statuses.dataverse_state(8, "On Hold", order_id="o", order_number="ORD-9")
    assert isinstance(issue, QualityIssue) and issue.code is IssueCode.STATUS_NOT_MAPPED
    assert "'On Hold' (id 8)" in issue.description and "ORD-9" in issue.description


def test_the_tax_table_picks_a_code_by_the_rows_rate():
    mapping = parse_order_mapping({"tax": {"codes": {20: "T20", 0: "T0"}, "default": "T9"}})
    assert mapping.tax.code_for(Decimal(100), Decimal(20)) == "T20"
    assert mapping.tax.code_for(Decimal(100), Decimal(0)) == "T0"
    assert mapping.tax.code_for(Decimal(100), Decimal(7)) == "T9"


def test_problems_of_both_files_are_reported_together(tmp_path: Path):
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump({"shipping_methods": {0: 1}}))
    (tmp_path / "order_status.yaml").write_text(
        yaml.safe_dump({"statuses": {"Shipped": {"statecode": 1, "statuscode": 1}}})
    )
    with pytest.raises(MappingError) as exc:
        read_order_mapping(tmp_path / "orders.yaml")
    assert any(p.startswith("shipping_methods.0:") for p in exc.value.problems)
    assert any(p.startswith("order_status.yaml: statuses.Shipped.statuscode:") for p in exc.value.problems)


def test_syncctl_mapping_check_entity_orders(tmp_path: Path):
    from syncctl.main import app

    runner = CliRunner()
    ok = runner.invoke(app, ["mapping", "check", "--entity", "orders"])
    assert ok.exit_code == 0, ok.output
    assert "mapping OK" in ok.output and "Awaiting Payment" in ok.output
    (tmp_path / "orders.yaml").write_text("trigger: {when: never}\n")
    (tmp_path / "order_status.yaml").write_text("statuses: {}\n")
    bad = runner.invoke(app, ["mapping", "check", str(tmp_path / "orders.yaml"), "--entity", "orders"])
    assert bad.exit_code == 1 and "trigger.when" in bad.output


def test_the_orders_spec_watches_state_flag_and_line_attributes_by_logical_name():
    from shared.flows.orders_spec import ORDERS
    from shared.sync import registry
    from shared.sync.spec import load

    assert registry.entity("orders") is ORDERS and ORDERS in registry.ENTITIES
    mapping = parse_order_mapping({"trigger": {"when": "flag", "flag_column": "bpi_tobp"}})
    order_table, line_table, *_ = ORDERS.dataverse_tables  # then opportunity (test_opportunity.py)
    watched = load(order_table.columns)(mapping)  # type: ignore[operator]
    assert watched[:3] == ("statecode", "statuscode", "bpi_tobp")
    assert {"freightamount", "discountamount", "discountpercentage"} <= set(watched)  # header edits
    columns = load(line_table.columns)(mapping)  # type: ignore[operator]
    assert "quantity" in columns and not any(c.startswith("_") for c in columns)
    assert load(ORDERS.flows[0].flow).__name__ == "OrdersToBrightpearl"  # type: ignore[attr-defined]


def test_the_loader_sees_an_edit_of_the_status_file(tmp_path: Path):
    import os

    from shared.mapping.orders_config import load_order_mapping

    orders, status = tmp_path / "orders.yaml", tmp_path / "order_status.yaml"
    orders.write_text("version: 1\n")
    status.write_text(yaml.safe_dump({"statuses": {"Shipped": {"statecode": 3, "statuscode": 100001}}}))
    assert load_order_mapping(orders).statuses.target(None, "Shipped") is not None
    status.write_text(yaml.safe_dump({"statuses": {"Dispatched": {"statecode": 3, "statuscode": 100001}}}))
    later = status.stat().st_mtime_ns + 1_000_000_000
    os.utime(status, ns=(later, later))
    reloaded = load_order_mapping(orders)
    assert reloaded.statuses.target(None, "Dispatched") is not None
    assert reloaded.statuses.target(None, "Shipped") is None
