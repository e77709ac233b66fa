"""`syncctl backfill invoices [--since DATE]` through the running app (issue 14 item 9, backfill of
payments): orders invoiced and paid while no poller ran get their Dynamics invoice, Paid with the
amount paid, exactly once when the backfill runs twice; a payment before --since is left out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from tests.e2e.customers.conftest import BP_TOPIC
from tests.e2e.invoices.conftest import INVOICES, InvoiceSandbox, money
from tests.e2e.invoices.test_invoices import COMPLETE, PAID, invoiced_order


def backfill_invoices(box: InvoiceSandbox, tmp_path: Path, *extra: str) -> str:
    from syncctl.main import app

    settings = tmp_path / "backfill.settings.json"
    settings.write_text(json.dumps({"Values": box.values}))
    result = CliRunner().invoke(
        app, ["backfill", "invoices", "--settings", str(settings), *extra], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_a_payments_backfill_brings_the_paid_invoices_once(invoices_sandbox: InvoiceSandbox, tmp_path: Path):
    box = invoices_sandbox
    order, bp_order = invoiced_order(box)
    box.admin(f"orders/{bp_order}/pay", {"amount": "45.00", "transactionRef": "pay-bf-1"})
    box.work()
    assert box.invoices() == []  # nothing announced the invoice or the payment (no poller ran)

    said = backfill_invoices(box, tmp_path)
    assert "published 1 invoice ids in 1 notices" in said  # the paid order, named once
    box.work()
    backfill_invoices(box, tmp_path, "--restart")  # again: the same order, its invoice found by key
    box.work()

    assert len(box.invoices()) == 1
    invoice = box.invoice_of(order)
    assert (invoice["statecode"], invoice["statuscode"]) == (PAID, COMPLETE)
    assert money(invoice["bpi_amountpaid"]) == Decimal("45.00")
    assert box.dead_letters(BP_TOPIC, INVOICES) == []


def test_payments_before_since_are_left_out(invoices_sandbox: InvoiceSandbox, tmp_path: Path):
    box = invoices_sandbox
    _, bp_order = invoiced_order(box)
    box.admin(f"orders/{bp_order}/pay", {"amount": "45.00", "transactionRef": "pay-bf-2"})
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    said = backfill_invoices(box, tmp_path, "--since", tomorrow)
    assert "published 0 invoice ids" in said, said
    box.work()
    assert box.invoices() == []
