"""`syncctl customers show` against the sandbox (issue 14 item 9): a customer who ordered, got a
shipment, returned and was refunded in Brightpearl, found by e-mail, by Brightpearl contact id
and by Dynamics contactid, shows both systems side by side (orders, credits, payments; the
Dynamics contact, its timeline and enrichment columns), figures computed from Brightpearl and
the sync state; an unknown customer exits 1 naming what was looked up."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from syncctl.main import app
from tests.e2e.orders.conftest import OrderSandbox
from tests.e2e.timeline.test_timeline import (  # noqa: F401 - fixtures
    admin,
    announce,
    credit,
    sandbox_settings,
    ship,
    timeline_edits,
    web_order,
)

runner = CliRunner()


def _show(box: OrderSandbox, tmp_path: Path, *args: str) -> tuple[int, str]:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": box.values}))
    out = runner.invoke(
        app, ["customers", "show", *args, "--settings", str(settings)], env={"COLUMNS": "200"}
    )
    return out.exit_code, out.output


def test_customers_show_gives_both_sides_computed_figures_and_sync_state(
    orders_sandbox: OrderSandbox, tmp_path: Path
):
    box = orders_sandbox
    contact, bp_customer = box.shop.customer, box.shop.bp_customer
    order = web_order(box, ref="WEB-360")
    announce(box, "order", order)
    note = ship(box, order, "TRACK-360")
    announce(box, "goods-out-note", note)
    returned = credit(box, order, ref="RMA-360")
    announce(box, "sales-credit", returned)
    admin(box, f"orders/{returned}/pay", {"paymentType": "PAYMENT"})
    announce(box, "order", returned)
    admin(box, f"orders/{order}/invoice", {})  # counted once invoiced, as the customer value flow counts
    box.dvc.update("contacts", contact, {"bpi_lifetimevalue": 12.5})  # as enrichment wrote
    email = next(
        r["emailaddress1"] for r in box.dv.rows("contact") if r["contactid"].lower() == contact.lower()
    )

    code, output = _show(box, tmp_path, email.upper(), "--json")
    assert code == 0, output
    view = json.loads(output)
    bp, dv, sync = view["brightpearl"], view["dynamics"], view["sync"]
    assert bp["contactId"] == bp_customer and dv["contact"]["contactid"].lower() == contact.lower()
    assert [o["id"] for o in bp["orders"]] == [order] and bp["orders"][0]["reference"] == "WEB-360"
    assert [(c["id"], c["parentOrderId"], c["paymentStatus"]) for c in bp["credits"]] == [
        (returned, order, "PAID")
    ]
    assert [(p["orderId"], p["paymentType"], Decimal(p["amountPaid"])) for p in bp["payments"]] == [
        (returned, "PAYMENT", Decimal("15.00"))
    ]
    subjects = {t["subject"] for t in dv["timeline"]}
    assert {
        "Order WEB-360 placed",
        "Order WEB-360 shipped TRACK-360",
        "Return RMA-360 for order WEB-360",
    } <= subjects
    assert Decimal(str(dv["contact"]["bpi_lifetimevalue"])) == Decimal("12.5")
    assert view["computed"]["netByCurrency"]["GBP"]["ordersLessCredits"] == "12.50"
    assert view["computed"]["orderCount"] == 1 and view["computed"]["openReturns"] == 0
    assert sync["link"]["brightpearl"] == str(bp_customer)
    assert sync["audit"], "the customer's audit rows are shown"

    # the text view, by Brightpearl contact id and by Dynamics contactid: the same customer
    code, text = _show(box, tmp_path, str(bp_customer))
    assert code == 0, text
    for expected in (
        "Brightpearl",
        "Dynamics",
        str(order),
        "WEB-360",
        "RMA-360",
        "PAYMENT",
        "TRACK-360",
        "12.50 GBP",
    ):
        assert expected in text, expected
    code, by_guid = _show(box, tmp_path, contact, "--json")
    assert code == 0 and json.loads(by_guid)["brightpearl"]["contactId"] == bp_customer

    # --limit: the newest records only (the credit), and the figures say they are partial
    code, newest = _show(box, tmp_path, str(bp_customer), "--json", "--limit", "1")
    assert code == 0, newest
    view = json.loads(newest)
    assert (
        [o["id"] for o in view["brightpearl"]["orders"]],
        [c["id"] for c in view["brightpearl"]["credits"]],
    ) == (
        [],
        [returned],
    )
    assert view["computed"]["complete"] is False
    code, text = _show(box, tmp_path, str(bp_customer), "--limit", "1")
    assert "from the newest 1 orders and credits only" in text


def test_an_unknown_customer_exits_1_naming_the_lookup(orders_sandbox: OrderSandbox, tmp_path: Path):
    code, output = _show(orders_sandbox, tmp_path, "nobody@example.org")
    assert code == 1
    assert "no customer 'nobody@example.org': looked up as an e-mail in both systems" in output
