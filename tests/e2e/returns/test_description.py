"""The case text from a sales credit (shared/flows/returns_to_dataverse.py), without the sandbox:
what the title and description say, and a long return kept within Dynamics' 2,000 characters."""

from __future__ import annotations

from typing import Any

from shared.flows.returns_to_dataverse import PARENT, case_plan, description, read_credit
from shared.mapping.returns_config import parse_returns_mapping

MAPPING = parse_returns_mapping({})


def credit(rows: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": 7,
        "orderTypeCode": "SC",
        "reference": "RMA-7",
        "parentOrderId": 5,
        PARENT: {"id": 5, "reference": "WEB-5"},
        "parties": {"customer": {"contactId": 3}},
        "currency": {"orderCurrencyCode": "EUR"},
        "totalValue": {"net": "10.00", "taxAmount": "2.00"},
        "orderStatus": {"orderStatusId": 8, "name": "New sales credit"},
        "orderPaymentStatus": "UNPAID",
        "customFields": {"PCF_RETURNREASON": {"id": 1, "value": "Faulty"}},
        "orderRows": {
            str(100 + i): {
                "orderRowSequence": str(10 * (i + 1)),
                "productSku": f"SKU-{i}",
                "productName": f"Product {i}",
                "quantity": {"magnitude": "1.0000"},
                "rowValue": {"rowNet": {"value": "1.5000"}},
            }
            for i in range(rows)
        },
        **extra,
    }


def test_the_title_and_description_name_the_order_and_each_returned_line():
    read = read_credit(credit(2), MAPPING)
    plan = case_plan(
        read,
        MAPPING,
        "c0ffee00-0000-0000-0000-000000000001",
        {"salesorderid": "x", "ordernumber": "ORD-5"},
        None,
    )
    assert plan.content["title"] == "Return for order WEB-5"
    assert plan.content["description"].splitlines() == [
        "Brightpearl sales credit 7 (RMA-7) for order WEB-5.",
        "Dynamics order: ORD-5",
        "Returned lines:",
        "- SKU SKU-0, Product 0: quantity 1, reason Faulty, value 1.50 EUR",
        "- SKU SKU-1, Product 1: quantity 1, reason Faulty, value 1.50 EUR",
        "Credit total: 12.00 EUR (net 10.00, tax 2.00)",
    ]
    assert (read.outcome, plan.options) == (
        "open",
        {"caseorigincode": 3, "casetypecode": 3, "prioritycode": 2},
    )


def test_a_long_return_keeps_whole_lines_and_counts_the_rest():
    text = description(read_credit(credit(80), MAPPING), MAPPING, None)
    lines = text.splitlines()
    assert len(text) <= 2000
    assert lines[-1] == "Credit total: 12.00 EUR (net 10.00, tax 2.00)"
    shown = [line for line in lines if line.startswith("- SKU ")]
    assert lines[-2] == f"- ... and {80 - len(shown)} more line(s)"
    assert all(line.endswith("value 1.50 EUR") for line in shown)


def test_a_paid_credit_is_refunded_and_a_cancelled_one_cancelled():
    assert read_credit(credit(1, orderPaymentStatus="PAID"), MAPPING).outcome == "refunded"
    assert read_credit(credit(1, orderPaymentStatus="PARTIALLY_PAID"), MAPPING).outcome == "open"
    cancelled = {"orderStatusId": 12, "name": "Credit cancelled"}
    assert read_credit(credit(1, orderStatus=cancelled), MAPPING).outcome == "cancelled"
    paid_and_cancelled = credit(1, orderStatus=cancelled, orderPaymentStatus="PAID")
    assert read_credit(paid_and_cancelled, MAPPING).outcome == "refunded"
