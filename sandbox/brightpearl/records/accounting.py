"""Accounting: currencies, tax codes, customer payments and journals (accounting-service writes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandbox.brightpearl.errors import bad
from sandbox.brightpearl.records.amounts import fmt, money
from sandbox.brightpearl.records.core import StateCore


class AccountingStore(StateCore):
    currencies: dict[int, dict[str, Any]]
    tax_codes: dict[int, dict[str, Any]]
    payment_methods: set[str]
    open_period_start: date
    payments: dict[int, dict[str, Any]]
    journals: dict[int, dict[str, Any]]
    orders: dict[int, dict[str, Any]]  # read: a payment belongs to an order

    # provided by OrderStore
    _touch_order: Callable[..., None]

    def _reset_accounting(self) -> None:
        self.payments = {}
        self.journals = {}
        self.currencies = {
            1: {"id": 1, "code": "GBP", "symbol": "£"},
            2: {"id": 2, "code": "EUR", "symbol": "€"},
            3: {"id": 3, "code": "USD", "symbol": "$"},
        }
        self.tax_codes = {
            1: {"id": 1, "code": "T20", "description": "Standard rate", "rate": "20.00"},
            2: {"id": 2, "code": "T5", "description": "Reduced rate", "rate": "5.00"},
            3: {"id": 3, "code": "T0", "description": "Zero rated", "rate": "0.00"},
            7: {"id": 7, "code": "N", "description": "Not applicable", "rate": "0.00"},
        }
        self.payment_methods = {"CARD", "PAYPAL", "BANK"}
        self.open_period_start = datetime(2000, 1, 1, tzinfo=UTC).date()

    def create_payment(self, body: Any) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            for key in ("paymentMethodCode", "paymentType", "orderId", "currencyIsoCode", "paymentDate"):
                if body.get(key) in (None, ""):
                    raise bad(f"{key} is required", "ACCC-001")
            if body["paymentType"] not in ("AUTH", "CAPTURE", "PAYMENT", "RECEIPT", "VOID"):
                raise bad(
                    f"paymentType {body['paymentType']!r} must be AUTH, CAPTURE, PAYMENT, RECEIPT or VOID",
                    "ACCC-002",
                )
            if body["paymentMethodCode"] not in self.payment_methods:
                raise bad(
                    f"paymentMethodCode {body['paymentMethodCode']!r} is not a payment method", "ACCC-003"
                )
            order = self.orders.get(body["orderId"])
            if order is None:
                raise bad(f"orderId {body['orderId']!r} does not exist", "ACCC-004")
            if body["currencyIsoCode"] != order["currency"]["orderCurrencyCode"]:
                raise bad(
                    f"currencyIsoCode {body['currencyIsoCode']!r} differs from the order's currency",
                    "ACCC-005",
                )
            ref = body.get("transactionRef")
            if ref and any(
                p.get("transactionRef") == ref and p["paymentMethodCode"] == body["paymentMethodCode"]
                for p in self.payments.values()
            ):
                raise bad(
                    f"transactionRef {ref!r} is already used with {body['paymentMethodCode']}", "ACCC-006"
                )
            paid = money(body.get("amountPaid", 0), "amountPaid", 2)
            pid = self.next_id("payment")
            self.payments[pid] = {
                "paymentId": pid,
                "transactionRef": ref or "",
                "transactionCode": body.get("transactionCode", ""),
                "paymentMethodCode": body["paymentMethodCode"],
                "paymentType": body["paymentType"],
                "orderId": order["id"],
                "currencyId": next(
                    c["id"] for c in self.currencies.values() if c["code"] == body["currencyIsoCode"]
                ),
                "currencyCode": body["currencyIsoCode"],
                "amountAuthorized": fmt(money(body.get("amountAuthorized", 0), "amountAuthorized", 2), 2),
                "amountPaid": fmt(paid, 2),
                "paymentDate": body["paymentDate"],
                "createdOn": self.now(),
                "journalId": body.get("journalId", 0),
                "expires": body.get("authorizationExpiry", ""),
            }
            self._touch_order(order)
            return pid

    def create_journal(self, body: Any) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            if not body.get("journalTypeCode"):
                raise bad("journalTypeCode is required", "ACCJ-001")
            tax_date = body.get("taxDate") or body.get("journalDate")
            try:
                day = datetime.strptime(str(tax_date), "%Y-%m-%d").date()
            except ValueError as exc:
                raise bad(f"taxDate {tax_date!r} must be yyyy-mm-dd", "ACCJ-002") from exc
            if day < self.open_period_start:
                raise bad(f"taxDate {tax_date} is in a closed accounting period", "ACCJ-003")
            totals = []
            for side in ("credits", "debits"):
                lines = body.get(side)
                if not isinstance(lines, list) or not lines:
                    raise bad(f"{side} must be a non-empty list", "ACCJ-004")
                total = Decimal(0)
                for i, line in enumerate(lines):
                    if not str(line.get("nominalCode", "")).isdigit():
                        raise bad(f"{side}[{i}].nominalCode must be an existing nominal code", "ACCJ-005")
                    total += money(
                        (line.get("change") or {}).get("value", "x"), f"{side}[{i}].change.value", 2
                    )
                totals.append(total)
            if totals[0] != totals[1]:
                raise bad(f"credits ({totals[0]}) and debits ({totals[1]}) do not balance", "ACCJ-006")
            jid = self.next_id("journal")
            self.journals[jid] = {
                "id": jid,
                "contactId": body.get("contactId", 0),
                "journalTypeCode": body["journalTypeCode"],
                "taxDate": str(day),
                "description": body.get("description", ""),
                "createdOn": self.now(),
                "createdByContactId": 4,
                "credits": body["credits"],
                "debits": body["debits"],
                "currencyId": body.get("currencyId", 1),
                "exchangeRate": body.get("exchangeRate", "1.000000"),
            }
            return jid
