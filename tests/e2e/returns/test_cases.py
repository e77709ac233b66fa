"""A Brightpearl sales credit opens one Dynamics case, which its refund resolves and its
cancellation cancels (issue 14 item 2), through the running app: the sales-credit poller
(order-search SC by updatedOn) and the returns-to-dataverse flow."""

from __future__ import annotations

from shared.store import AuditResult
from tests.e2e.returns.conftest import ReturnSandbox

ACTIVE, RESOLVED, CANCELLED = 0, 1, 2
WEB, REQUEST, NORMAL = 3, 3, 2


def ordered(box: ReturnSandbox) -> tuple[str, int]:
    """A Dynamics order (2 mugs, 1 tee) raised and synced to Brightpearl; (salesorderid, its
    Brightpearl order id)."""
    order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
    box.work()
    return order, box.bp_order_id(order)


def test_a_sales_credit_opens_a_case_with_customer_order_title_and_returned_lines(returns_sandbox):
    box = returns_sandbox
    order, bp_order = ordered(box)
    reference = box.bp_sim.state.orders[bp_order]["reference"]
    credit = box.credit(bp_order, [("MUG-1", 1), ("TEE-1", 1)], reason="Damaged in transit")

    box.poll_credits()

    case = box.case(credit)
    assert case["title"] == f"Return for order {reference}"
    assert str(
        case["_customerid_value"] if "_customerid_value" in case else case["customerid"]["id"]
    ).lower() == (box.shop.customer.lower())
    number = box.dv_order(order)["ordernumber"]
    description = case["description"]
    assert f"Dynamics order: {number}" in description
    assert "- SKU MUG-1, Product MUG-1: quantity 1, reason Damaged in transit, value 12.50 GBP" in description
    assert "- SKU TEE-1, Product TEE-1: quantity 1, reason Damaged in transit, value 20.00 GBP" in description
    assert "Credit total: 39.00 GBP (net 32.50, tax 6.50)" in description
    assert (case["caseorigincode"], case["casetypecode"], case["prioritycode"]) == (WEB, REQUEST, NORMAL)
    assert case["statecode"] == ACTIVE
    [entry] = box.credit_audit(credit)
    assert (entry.result, entry.target_id) == (AuditResult.SYNCED, case["incidentid"])
    assert box.returns_dead_letters() == []


def test_a_refund_resolves_the_case_with_an_incident_resolution_once(returns_sandbox):
    box = returns_sandbox
    _, bp_order = ordered(box)
    credit = box.credit(bp_order, [("MUG-1", 2)])
    box.poll_credits()
    case = box.case(credit)["incidentid"]

    box.refund(credit)  # a PAYMENT customer payment of the credit's total: orderPaymentStatus PAID
    box.poll_credits()

    held = box.case(credit)
    assert (held["statecode"], held["statuscode"]) == (RESOLVED, 5)
    [resolution] = box.resolutions(case)
    assert resolution["subject"] == "Refunded in Brightpearl"
    assert f"Brightpearl sales credit {credit} refunded" in resolution["description"]
    assert "30.00 GBP" in resolution["description"]

    box.host.run_timer("poll_brightpearl_returns")  # the same credit again (overlap): a no-op
    box.set_reason(credit, "Too small")  # a later change of the credit: the case stays resolved
    box.poll_credits()
    assert len(box.resolutions(case)) == 1
    assert box.case(credit)["statecode"] == RESOLVED
    assert box.returns_dead_letters() == []


def test_a_credit_cancelled_in_brightpearl_cancels_its_case(returns_sandbox):
    box = returns_sandbox
    _, bp_order = ordered(box)
    credit = box.credit(bp_order, [("TEE-1", 1)])
    box.poll_credits()
    assert box.case(credit)["statecode"] == ACTIVE

    box.cancel(credit)  # the "Credit cancelled" status (mappings/returns.yaml cancel.statuses)
    box.poll_credits()

    held = box.case(credit)
    assert (held["statecode"], held["statuscode"]) == (CANCELLED, 6)
    assert box.resolutions(held["incidentid"]) == []
    assert box.returns_dead_letters() == []
