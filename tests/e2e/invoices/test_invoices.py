"""Brightpearl invoices and payments reach Dynamics as invoices (issue 14 item 3), through the
running app: an order invoiced in Brightpearl becomes one Dynamics invoice with its lines, linked
to its salesorder, amounts exact to the penny; customer payments make it Paid (Partial, then
Complete) with the amount paid; duplicates and a host restart never make a second invoice; an
order whose rows do not add up to its total is dead-lettered naming the difference; an order not
yet in Dynamics is retried until it is there."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from shared.events import ChangeNotice, Envelope
from tests.e2e.customers.conftest import BP_TOPIC
from tests.e2e.invoices.conftest import INVOICES, InvoiceSandbox, lookup, money

ACTIVE, PAID, COMPLETE, PARTIAL = 0, 2, 100001, 100002


def invoiced_order(box: InvoiceSandbox) -> tuple[str, int]:
    """A Dynamics order (2 mugs at 12.50, a tee at 20.00) synced to Brightpearl and invoiced there
    through Sales Order Close; the salesorderid and the Brightpearl order id."""
    order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
    box.work()
    bp_order = int(box.bp_order_of(order)["id"])
    box.bp.request("POST", f"/order-service/sales-order/{bp_order}/close", json={})
    return order, bp_order


def test_an_invoiced_dynamics_order_becomes_one_dynamics_invoice_with_its_lines_and_exact_amounts(
    invoices_sandbox: InvoiceSandbox,
) -> None:
    box = invoices_sandbox
    order, bp_order = invoiced_order(box)
    box.polls()

    invoice = box.invoice_of(order)
    bp = box.bp_order(bp_order)
    assert invoice["bpi_brightpearlid"] == bp["invoices"][0]["invoiceReference"] == f"SI-{bp_order}"
    assert lookup(invoice["salesorderid"]) == order.lower()
    assert lookup(invoice["customerid"]) == box.shop.customer.lower()
    assert money(invoice["totalamount"]) == Decimal(bp["totalValue"]["total"]) == Decimal("45.00")
    assert (invoice["statecode"], invoice["statuscode"]) == (ACTIVE, 1)
    lines = box.invoice_lines(invoice)
    assert sorted((line["productdescription"], Decimal(str(line["quantity"]))) for line in lines) == [
        ("MUG-1 Product MUG-1", Decimal(2)),
        ("TEE-1 Product TEE-1", Decimal(1)),
    ]
    rows = {
        Decimal(r["rowValue"]["rowNet"]["value"]) + Decimal(r["rowValue"]["rowTax"]["value"])
        for r in bp["orderRows"].values()
    }
    assert {money(line["extendedamount"]) for line in lines} == rows
    assert box.dead_letters(BP_TOPIC, INVOICES) == []


def test_payments_make_the_invoice_paid_partial_then_complete_with_the_amount_paid(
    invoices_sandbox: InvoiceSandbox,
) -> None:
    box = invoices_sandbox
    order, bp_order = invoiced_order(box)
    box.polls()
    assert box.invoice_of(order)["statecode"] == ACTIVE

    box.admin(f"orders/{bp_order}/pay", {"amount": "10.00", "transactionRef": "pay-1"})
    box.host.run_timer("poll_brightpearl_payments")  # the payment poller alone brings it
    box.work()
    invoice = box.invoice_of(order)
    assert (invoice["statecode"], invoice["statuscode"]) == (PAID, PARTIAL)
    assert money(invoice["bpi_amountpaid"]) == Decimal("10.00")
    assert box.store.cursors.get("invoices-brightpearl-payment-createdon") is not None

    box.admin(f"orders/{bp_order}/pay", {"amount": "35.00", "transactionRef": "pay-2"})
    box.polls()
    invoice = box.invoice_of(order)
    assert (invoice["statecode"], invoice["statuscode"]) == (PAID, COMPLETE)
    assert money(invoice["bpi_amountpaid"]) == Decimal("45.00")
    assert len(box.invoice_lines(invoice)) == 2  # reopened to write, lines untouched

    # a refund (PAYMENT: money out) brings it back to Partial with what is left paid
    box.admin(
        f"orders/{bp_order}/pay", {"amount": "5.00", "paymentType": "PAYMENT", "transactionRef": "refund-1"}
    )
    box.polls()
    invoice = box.invoice_of(order)
    assert (invoice["statecode"], invoice["statuscode"], money(invoice["bpi_amountpaid"])) == (
        PAID,
        PARTIAL,
        Decimal("40.00"),
    )
    assert box.dead_letters(BP_TOPIC, INVOICES) == []


def test_duplicate_notices_and_a_host_restart_make_one_invoice(invoices_sandbox: InvoiceSandbox) -> None:
    box = invoices_sandbox
    order, bp_order = invoiced_order(box)
    notice = ChangeNotice(
        system="brightpearl",
        entity="order",
        ids=(str(bp_order),),
        operation="changed",
        observed_at=datetime.now(UTC),
        source="/brightpearl/test",
        origin="webhook",
        version="v:dup",
    )
    box.host.stop()  # the notices wait on the bus while no host runs
    for copy in range(3):  # the same notice three times, as resubmitted copies (new message ids)
        box.bus.publish(
            BP_TOPIC, [Envelope.wrap(notice.model_copy(update={"version": f"v:dup{copy}"})).to_message()]
        )
    box.start_host()  # a new instance of the Function App picks them up
    box.polls()
    box.polls()
    invoice = box.invoice_of(order)  # exactly one
    assert len(box.invoice_lines(invoice)) == 2
    assert len(box.invoices()) == 1
    assert box.dead_letters(BP_TOPIC, INVOICES) == []


def test_an_order_whose_rows_do_not_add_up_to_its_total_is_dead_lettered_naming_the_difference(
    invoices_sandbox: InvoiceSandbox,
) -> None:
    box = invoices_sandbox
    order, bp_order = invoiced_order(box)
    with box.bp_sim.state.lock:  # a total the rows do not make (as a bad import leaves it)
        box.bp_sim.state.orders[bp_order]["totalValue"]["total"] = "46.25"
    box.polls()
    assert [r for r in box.invoices() if lookup(r.get("salesorderid")) == order.lower()] == []
    [dead] = box.dead_letters(BP_TOPIC, INVOICES)
    assert dead.dead_letter_reason == "InvoiceTotalsMismatch"
    description = dead.dead_letter_error_description
    assert "45" in description and "46.25" in description and "difference of -1.25 GBP" in description
