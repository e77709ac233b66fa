"""Returns as mappings/returns.yaml configures them: origin, type and priority of the case, a
status that means refunded, no reason field; and what Dynamics users do to a case survives
until the credit changes in Brightpearl (issue 14 item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.returns.conftest import ReturnSandbox, returns_mapping

EMAIL, PROBLEM, HIGH = 2, 2, 1
CREDIT_COMPLETE = 9  # the simulator's "Credit complete" SC status
RESOLVED, INFORMATION_PROVIDED = 1, 1000


@pytest.fixture
def returns_settings(tmp_path: Path) -> dict[str, str]:
    path = returns_mapping(
        tmp_path,
        ("  origin: Web ", "  origin: Email "),
        ("  type: Request ", "  type: 2 "),
        ("  priority: Normal", "  priority: high"),
        ("reason_field: PCF_RETURNREASON", "reason_field: ''"),
        ("  statuses: []", "  statuses: [Credit complete]"),
        ("  status: Problem Solved ", "  status: Information Provided "),
    )
    return {"RETURNS_MAPPING_PATH": str(path)}


def a_credit(box: ReturnSandbox) -> int:
    order = box.raise_order([("MUG-1", 1)])
    box.work()
    return box.credit(box.bp_order_id(order), [("MUG-1", 1)], reason="ignored: no reason field")


def test_the_configured_options_and_a_refunded_status_resolve_the_case(returns_sandbox):
    box = returns_sandbox
    credit = a_credit(box)
    box.poll_credits()
    case = box.case(credit)
    assert (case["caseorigincode"], case["casetypecode"], case["prioritycode"]) == (EMAIL, PROBLEM, HIGH)
    assert "quantity 1, reason not given, value 12.50 GBP" in case["description"]

    box.admin(f"orders/{credit}/status", {"orderStatusId": CREDIT_COMPLETE})  # no payment at all
    box.poll_credits()

    held = box.case(credit)
    assert (held["statecode"], held["statuscode"]) == (RESOLVED, INFORMATION_PROVIDED)
    [resolution] = box.resolutions(held["incidentid"])
    assert "Credit complete" in resolution["description"]


def test_edits_in_dynamics_stay_until_the_credit_changes_in_brightpearl(returns_sandbox):
    box = returns_sandbox
    credit = a_credit(box)
    box.poll_credits()
    case = box.case(credit)["incidentid"]
    box.dv.crm("PATCH", f"incidents({case})", {"title": "Customer called: refund by card"})

    box.bp.request("POST", f"/order-service/order/{credit}/note", json={"text": "Parcel received"})
    box.poll_credits()  # the credit changed (a note), its case content did not: nothing written
    assert box.case(credit)["title"] == "Customer called: refund by card"

    row = {"productId": box.shop.bp_products["CAP-1"], "magnitude": 2, "taxCode": "T20", "rowNet": "16.00"}
    box.bp.request("POST", f"/order-service/order/{credit}/row", json=row)
    box.poll_credits()  # a returned line more: Brightpearl's content is written again

    held = box.case(credit)
    assert "- SKU CAP-1, Product CAP-1: quantity 2, reason not given, value 16.00 GBP" in held["description"]
    assert held["title"].startswith("Return for order ")
    assert box.returns_dead_letters() == []
