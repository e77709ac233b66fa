"""Invoice amounts (issue 14 item 3, shared/flows/invoices_to_dataverse.py): Brightpearl rows as
Dynamics invoice lines whose amounts are exact to the currency's precision, the totals check that
names the difference, the amount paid from receipts less refunds, and the writes a Dynamics
invoice needs (reopening a Paid one to change it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.flows.invoices_to_dataverse import (
    InvoiceState,
    TotalsMismatch,
    amount_paid,
    invoice_key,
    invoice_lines,
    operations,
    state_for,
)


def row(net: str, tax: str, quantity: str, price: str, sku: str = "MUG-1", seq: int = 10) -> dict[str, Any]:
    return {
        "orderRowSequence": str(seq),
        "productSku": sku,
        "productName": "Mug",
        "quantity": {"magnitude": quantity},
        "productPrice": {"currencyCode": "GBP", "value": price},
        "rowValue": {"rowNet": {"value": net}, "rowTax": {"value": tax}},
    }


def order(rows: dict[str, dict[str, Any]], total: str, currency: str = "GBP") -> dict[str, Any]:
    return {"orderRows": rows, "totalValue": {"total": total}, "currency": {"orderCurrencyCode": currency}}


def line_amount(line: Any, precision: int = 2) -> Decimal:
    step = Decimal(1).scaleb(-precision)
    return (line.price * line.quantity).quantize(step) - line.discount + line.tax


def test_each_line_amounts_to_its_row_net_plus_tax_and_the_lines_to_the_total() -> None:
    rows = {
        "81": row("16.0000", "3.2000", "2.0000", "8.0000", seq=20),  # at list price
        "82": row("9.0000", "1.8000", "1.0000", "10.0000", "TEE-1", seq=10),  # 1.00 discounted
        "83": row("10.0000", "0.0000", "3.0000", "3.0000", "CAP-1", seq=30),  # above list price
    }
    lines = invoice_lines(order(rows, "40.00"), invoice_key("1", "SI-1"), 2)
    assert [line.row_id for line in lines] == ["82", "81", "83"]  # orderRowSequence
    assert [line_amount(line) for line in lines] == [Decimal("10.80"), Decimal("19.20"), Decimal("10.00")]
    assert lines[1].discount == 0 and lines[0].discount == Decimal("1.00")
    assert lines[2].price == Decimal("3.3334") and lines[2].discount == Decimal("0.00")  # 3 x 3.3334 = 10.00
    assert all(line.discount >= 0 for line in lines)
    assert sum(line_amount(line) for line in lines) == Decimal("40.00")


def test_a_residue_within_rounding_goes_on_the_last_line_so_the_totals_agree_exactly() -> None:
    rows = {
        "1": row("3.3333", "0.0000", "1", "3.3333", seq=1),
        "2": row("3.3333", "0.0000", "1", "3.3333", seq=2),
    }
    lines = invoice_lines(order(rows, "6.67"), "inv", 2)  # rows: 3.33 + 3.33 = 6.66 at 2 places
    assert sum(line_amount(line) for line in lines) == Decimal("6.67")


def test_a_zero_decimal_currency_quantises_to_whole_units() -> None:
    rows = {"1": row("1500", "150", "3", "500")}
    [line] = invoice_lines(order(rows, "1650", "JPY"), "inv", 0)
    assert line_amount(line, 0) == Decimal("1650")


def test_rows_that_do_not_add_up_to_the_total_name_the_difference() -> None:
    rows = {"1": row("16.0000", "3.2000", "2", "8.0000")}
    with pytest.raises(TotalsMismatch) as caught:
        invoice_lines(order(rows, "20.45"), "inv", 2)
    assert str(caught.value) == (
        "its rows add up to 19.2 (net plus tax) but its totalValue.total is 20.45: a difference of -1.25 GBP"
    )
    invoice_lines(order(rows, "19.204"), "inv", 2)  # within half a penny: rounding, accepted


def test_the_amount_paid_is_receipts_and_captures_less_refunds() -> None:
    payments = [
        {"paymentType": "RECEIPT", "amountPaid": "20.00"},
        {"paymentType": "CAPTURE", "amountPaid": "5.00"},
        {"paymentType": "AUTH", "amountPaid": "0.00"},
        {"paymentType": "PAYMENT", "amountPaid": "7.50"},
    ]
    assert amount_paid(payments) == Decimal("17.50")
    assert state_for(Decimal("17.50"), Decimal("45.00")) == (2, 100002)
    assert state_for(Decimal("45.00"), Decimal("45.00")) == (2, 100001)
    assert state_for(Decimal(0), Decimal("45.00")) == (0, None)


def test_a_paid_invoice_is_reopened_to_change_its_amount_then_closed_again() -> None:
    wanted = InvoiceState(
        invoice_id=invoice_key("7", "SI-7"), paid=Decimal("45.00"), statecode=2, statuscode=100001
    )
    held = wanted.model_copy(update={"paid": Decimal("10.00"), "statuscode": 100002})
    ops = operations(wanted, held, {})
    assert [(op.body, what) for op, what in ops] == [
        ({"statecode": 0, "statuscode": 1}, "reopened to write"),
        ({"bpi_amountpaid": 45.0}, "amount paid 45.00"),
        ({"statecode": 2, "statuscode": 100001}, "state Paid (Complete)"),
    ]
    assert operations(wanted, wanted.model_copy(), {}) == []  # up to date: nothing written


def test_a_new_invoice_is_created_only_if_none_exists_under_its_key() -> None:
    wanted = InvoiceState(invoice_id=invoice_key("7", "SI-7"), statecode=0)
    [create, *_] = operations(wanted, None, {"name": "Invoice SI-7"})
    assert create[0].method == "PATCH" and create[0].headers == {"If-None-Match": "*"}
    assert invoice_key("7", "SI-7") == wanted.invoice_id  # the same key on every run and worker
