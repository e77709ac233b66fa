"""Customer value on the Dynamics customer (issue 14 items 4-5), end to end in the sandbox:
Brightpearl orders, credits and refunds -> notices -> customer-value-to-dataverse -> the flush
timer -> the Dynamics contact and its parent account; currency at the recorded rates; a missing
rate retried then dead-lettered; duplicates and a restart; the nightly recompute's drift."""

from __future__ import annotations

from decimal import Decimal

from typer.testing import CliRunner

from shared.reconcile.report import last_report
from syncctl.main import app as syncctl
from tests.e2e.customer_value.conftest import ValueSandbox, money


def test_values_follow_orders_a_credit_and_its_refund_on_contact_and_account(values_box: ValueSandbox):
    box = values_box
    account = box.account("Buyers Ltd")
    customer, contact = box.customer("Orders", account=account)
    first = box.order(customer, "100.00", placed="2026-02-01")
    second = box.order(customer, "50.00", placed="2026-03-10")
    draft = box.order(customer, "999.00", placed="2026-03-20", invoiced=None)  # not invoiced: not counted
    box.notify("order", first, second, draft)
    box.flush()

    held = box.held("contacts", contact)
    assert money(held["bpi_lifetimevalue"]) == Decimal("150.00")
    assert held["bpi_ordercount"] == 2
    assert money(held["bpi_averageordervalue"]) == Decimal("75.00")
    assert str(held["bpi_lastpurchasedate"]).startswith("2026-03-10")
    assert held["bpi_openreturns"] == 0
    assert money(box.held("accounts", account)["bpi_lifetimevalue"]) == Decimal("150.00")

    credit = box.order(customer, "30.00", placed="2026-03-15", kind="SC", parent=first)
    box.notify("sales-credit", credit)
    box.flush()
    held = box.held("contacts", contact)
    assert (money(held["bpi_lifetimevalue"]), held["bpi_openreturns"]) == (Decimal("120.00"), 1)
    assert held["bpi_ordercount"] == 2  # a credit is not an order

    box.refund(credit)  # the customer-payment poller announces the credit's order
    box.notify("order", credit)
    box.flush()
    held = box.held("contacts", contact)
    assert (money(held["bpi_lifetimevalue"]), held["bpi_openreturns"]) == (Decimal("120.00"), 0)
    assert money(box.held("accounts", account)["bpi_lifetimevalue"]) == Decimal("120.00")
    assert box.held("accounts", account)["bpi_ordercount"] == 2


def test_a_multi_currency_customer_converts_at_the_recorded_rates(values_box: ValueSandbox):
    box = values_box
    customer, contact = box.customer("Currencies")
    orders = [
        box.order(customer, "100.00", currency="USD", placed="2026-02-15"),  # 1 / 1.25 -> 80.00
        box.order(customer, "100.00", currency="USD", placed="2026-03-15"),  # 1 / 1.30 -> 76.92
        box.order(customer, "55.00", currency="EUR", placed="2026-02-01"),  # 1 / 1.10 -> 50.00
        box.order(customer, "10.00", placed="2026-02-01"),
    ]
    box.notify("order", *orders)
    box.flush()
    assert money(box.held("contacts", contact)["bpi_lifetimevalue"]) == Decimal("216.92")

    recorded = box.values.contributions(str(customer))
    rates = {c.txn: (c.currency, c.rate, c.rate_on.isoformat(), c.net) for c in recorded.values()}
    assert rates[f"order-{orders[0]}"] == ("USD", Decimal("0.8"), "2026-02-15", Decimal("80.00"))
    assert rates[f"order-{orders[1]}"] == ("USD", Decimal("0.769230769231"), "2026-03-15", Decimal("76.92"))
    assert rates[f"order-{orders[2]}"] == ("EUR", Decimal("0.909090909091"), "2026-02-01", Decimal("50.00"))
    audit = [e.description for e in box.box.store.audit.for_record("order", "brightpearl", str(orders[1]))]
    assert any("100.00 USD = 76.92 GBP at 0.769230769231" in (d or "") for d in audit), audit

    shown = CliRunner().invoke(syncctl, ["customer-value", "show", str(customer)], env=box.box.values)
    assert shown.exit_code == 0, shown.output
    assert "lifetime value 216.92" in shown.output
    assert (
        f"order-{orders[1]}: 100.00 USD -> 76.92 at 0.769230769231 (Brightpearl exchange rates, 2026-03-15)"
        in (shown.output)
    )

    # the rate table moves afterwards: a redelivered event keeps the rate recorded for its date
    box.rates(("EUR", "2026-01-01", "2.00"), ("USD", "2026-01-01", "2.00"))
    box.notify("order", *orders)
    box.flush()
    assert money(box.held("contacts", contact)["bpi_lifetimevalue"]) == Decimal("216.92")


def test_a_missing_rate_is_retried_then_dead_lettered_naming_the_pair_and_the_date(values_box: ValueSandbox):
    box = values_box
    box.rates(("USD", "2026-06-01", "1.30"))  # nothing before June
    customer, contact = box.customer("NoRate")
    order = box.order(customer, "100.00", currency="USD", placed="2026-02-01")
    box.notify("order", order)
    assert box.box.bus.counts("brightpearl-changes", "customer-value-to-dataverse").scheduled == 1  # retried
    box.run_retries()
    [dead] = box.dead_letters()
    text = f"{dead.dead_letter_reason} {dead.dead_letter_error_description}"
    assert "RateMissing" in text and "USD->GBP on 2026-02-01" in text, text
    box.flush()
    assert box.held("contacts", contact)["bpi_lifetimevalue"] is None  # never guessed


def test_duplicates_and_a_restart_do_not_double_count(values_box: ValueSandbox):
    box = values_box
    customer, contact = box.customer("Twice")
    orders = [
        box.order(customer, net, placed="2026-02-0" + str(i + 1)) for i, net in enumerate(("10.00", "20.00"))
    ]
    box.notify("order", *orders, *orders)  # the webhook and the poller both announce them
    box.flush()
    box.restart()
    box.notify("order", *orders)  # redelivered to the new instance
    third = box.order(customer, "30.00", placed="2026-02-03")
    box.notify("order", third, third)
    box.flush()
    held = box.held("contacts", contact)
    assert (money(held["bpi_lifetimevalue"]), held["bpi_ordercount"]) == (Decimal("60.00"), 3)
    assert money(held["bpi_averageordervalue"]) == Decimal("20.00")


def test_the_nightly_recompute_finds_reports_and_fixes_injected_drift(values_box: ValueSandbox):
    box = values_box
    lost, lost_contact = box.customer("Lost")
    edited, edited_contact = box.customer("Edited")
    lost_orders = [box.order(lost, "40.00"), box.order(lost, "60.00")]
    edited_order = box.order(edited, "25.00")
    box.notify("order", *lost_orders, edited_order)
    box.flush()
    # drift 1: a contribution lost from the store (its Dynamics figure is then recomputed too)
    box.values.put(str(lost), [], [f"order-{lost_orders[1]}"])
    box.values.mark_dirty([str(lost)])
    box.flush()
    assert money(box.held("contacts", lost_contact)["bpi_lifetimevalue"]) == Decimal("40.00")
    # drift 2: someone edits the figure in Dynamics
    box.box.dvc.update("contacts", edited_contact, {"bpi_lifetimevalue": 999})

    box.recompute()  # one customer a night (10 % of 2, at least one): the first
    report = last_report(box.box.store.cursors, "customer-value")
    assert report is not None and report.counts["drift"] == 2
    stored, dynamics = report.items  # the store lost a transaction, so Dynamics showed too little
    assert (stored.brightpearl_id, stored.changed_in, stored.fields) == (
        str(lost),
        ["brightpearl"],
        [f"order-{lost_orders[1]}"],
    )
    assert (dynamics.dataverse_id, dynamics.changed_in) == (lost_contact.lower(), ["dataverse"])
    assert dynamics.fields == ["bpi_averageordervalue", "bpi_lifetimevalue", "bpi_ordercount"]
    assert money(box.held("contacts", lost_contact)["bpi_lifetimevalue"]) == Decimal("100.00")
    shown = CliRunner().invoke(syncctl, ["customer-value", "last"], env=box.box.values)
    assert shown.exit_code == 1, shown.output  # drift found (and fixed)
    assert (
        f"customer {lost} (contact {lost_contact.lower()}) in the integration's store: order-" in shown.output
    )
    assert "drift 2 (fixed)" in shown.output

    box.recompute()  # the next night: the next customer
    report = last_report(box.box.store.cursors, "customer-value")
    assert report is not None
    [finding] = report.items
    assert (finding.brightpearl_id, finding.dataverse_id, finding.changed_in) == (
        str(edited),
        edited_contact.lower(),
        ["dataverse"],
    )
    assert finding.fields == ["bpi_lifetimevalue"]
    assert money(box.held("contacts", edited_contact)["bpi_lifetimevalue"]) == Decimal("25.00")

    box.recompute()  # round again: nothing drifts any more
    report = last_report(box.box.store.cursors, "customer-value")
    assert report is not None and report.counts["drift"] == 0
