"""Anomaly detection through the running sandbox (issue 16 item 3): a clean seeded run (a customer
synced, its e-mail edited once, a handful of ordinary orders) raises no flag at all, and an
order far outside that customer's history is flagged in the audit (flow anomalies) and still
reaches Brightpearl."""

from __future__ import annotations

from shared.anomaly.flags import AUDIT_FLOW
from shared.store import AuditResult
from tests.e2e.orders.conftest import OrderSandbox

ORDINARY = [
    [("MUG-1", 2), ("TEE-1", 1)],
    [("CAP-1", 3)],
    [("MUG-1", 1), ("CAP-1", 2)],
    [("TEE-1", 2)],
    [("MUG-1", 3)],
]


def flags(box: OrderSandbox) -> list[tuple[str | None, str]]:
    return [(e.reason_code, e.source_id) for e in box.store.audit.recent(AUDIT_FLOW, 100)]


def test_a_clean_seeded_run_raises_no_flag_and_an_outlier_order_is_flagged(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    customer = box.shop.customer
    box.dv.crm("PATCH", f"contacts({customer})", {"emailaddress1": "ada.changed@example.com"})  # one change
    orders = [box.raise_order(lines) for lines in ORDINARY]
    box.work()

    assert all(len(box.bp_orders_of(o)) == 1 for o in orders)
    assert flags(box) == []  # a clean run: zero flags
    assert not [
        e
        for flow in box.store.audit.flows()
        for e in box.store.audit.recent(flow, 500)
        if e.result is AuditResult.ANOMALY or (e.reason_code or "").startswith("Anomaly")
    ]

    outlier = box.raise_order([("MUG-1", 400)])  # 5,000 against a median of about 38
    box.work()

    assert len(box.bp_orders_of(outlier)) == 1  # flagged, not blocked
    assert flags(box) == [("AnomalyOrderValue", outlier)]
    [row] = box.store.audit.recent(AUDIT_FLOW, 10)
    assert row.result is AuditResult.ANOMALY and "the customer's median" in row.description
    assert "example.com" not in row.description


def test_a_customer_email_changed_more_than_three_times_a_day_is_flagged(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    customer = box.shop.customer
    for n in range(1, 5):  # the fourth change today is one too many (ANOMALY_EMAIL_CHANGES_PER_DAY=3)
        box.dv.crm("PATCH", f"contacts({customer})", {"emailaddress1": f"ada.{n}@example.com"})
        box.work()
        if n == 3:
            assert flags(box) == []

    assert flags(box) == [("AnomalyEmailChurn", customer.lower())]
    [row] = box.store.audit.recent(AUDIT_FLOW, 10)
    assert row.description.startswith("customers-to-brightpearl: e-mail changed 4 times today")
    contact = box.bp.request("GET", f"/contact-service/contact/{box.shop.bp_customer}").response[0]
    assert contact["communication"]["emails"]["PRI"]["email"] == "ada.4@example.com"  # not blocked
