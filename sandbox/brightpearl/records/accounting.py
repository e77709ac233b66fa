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
    nominal_codes: dict[str, dict[str, Any]]
    base_currency_id: int
    multi_currency: bool
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
        # The chart of accounts journals are checked against (reference §9: a line's nominal
        # code must exist and be active; a bank nominal code needs a tax code on its line).
        self.nominal_codes = {
            "1100": {"name": "Debtors control", "bank": False, "active": True},
            "1200": {"name": "Bank current account", "bank": True, "active": True},
            "1210": {"name": "Card clearing account", "bank": True, "active": True},
            "2100": {"name": "Creditors control", "bank": False, "active": True},
            "2200": {"name": "VAT", "bank": False, "active": True},
            "4000": {"name": "Sales", "bank": False, "active": True},
            "4009": {"name": "Discounts allowed", "bank": False, "active": True},
            "7900": {"name": "Bank charges and fees", "bank": False, "active": True},
            "8200": {"name": "Donations (archived)", "bank": False, "active": False},
        }
        self.base_currency_id = 1
        self.multi_currency = True

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
            self._check_journal_currency(body)
            totals = []
            for side in ("credits", "debits"):
                lines = body.get(side)
                if not isinstance(lines, list) or not lines:
                    raise bad(f"{side} must be a non-empty list", "ACCJ-004")
                total = Decimal(0)
                for i, line in enumerate(lines):
                    self._check_journal_line(f"{side}[{i}]", line)
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
                "currencyId": body.get("currencyId", self.base_currency_id),
                "exchangeRate": body.get("exchangeRate", "1.000000"),
            }
            return jid

    def _check_journal_line(self, where: str, line: Any) -> None:
        """A journal line's nominal code exists and is active; a bank line carries a tax code."""
        if not isinstance(line, dict):
            raise bad(f"{where} must be an object", "ACCJ-004")
        code = str(line.get("nominalCode", ""))
        account = self.nominal_codes.get(code)
        if account is None:
            raise bad(f"{where}.nominalCode {code!r} does not exist in the chart of accounts", "ACCJ-005")
        if not account["active"]:
            raise bad(f"{where}.nominalCode {code} ({account['name']}) is not active", "ACCJ-007")
        if account["bank"] and not line.get("taxCode"):
            raise bad(f"{where}.taxCode is required on a bank nominal code ({code})", "ACCJ-008")

    def _check_journal_currency(self, body: dict[str, Any]) -> None:
        """currencyId exists; a foreign one needs multi-currency; the exchange rate is 1.000000 in
        the base currency and positive with at most 6 decimal places otherwise (reference §9)."""
        currency = body.get("currencyId", self.base_currency_id)
        if currency not in self.currencies:
            raise bad(f"currencyId {currency!r} is not one of the account's currencies", "ACCJ-009")
        if currency != self.base_currency_id and not self.multi_currency:
            raise bad("a foreign currencyId needs Multi Currency enabled on the account", "ACCJ-010")
        if "exchangeRate" not in body:
            return
        rate = money(body["exchangeRate"], "exchangeRate", 6)
        if currency == self.base_currency_id and rate != 1:
            raise bad("exchangeRate must be 1.000000 for the base currency", "ACCJ-011")
        if rate <= 0:
            raise bad("exchangeRate must be positive", "ACCJ-011")
