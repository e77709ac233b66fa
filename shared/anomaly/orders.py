"""Order values far outside the customer's history or the account's normal range.

An order about to be created in Brightpearl (orders-to-brightpearl) is valued as its lines' net
(quantity x unit price less line discount) plus freight less the order discount, before tax,
in its own currency. It is judged against the customer's earlier orders in that currency once
there are ANOMALY_ORDER_CUSTOMER_HISTORY of them, else against the account's once there are
ANOMALY_ORDER_ACCOUNT_HISTORY: more than ANOMALY_ORDER_VALUE_THRESHOLD robust deviations from
the median (shared/anomaly/stats.py) is an `OrderValue` flag, which can hold the order for
review. Orders created are added to both histories (the newest 50 per customer, 500 per account).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from shared.anomaly.flags import Flag
from shared.anomaly.state import read, update
from shared.anomaly.stats import judge
from shared.anomaly.watch import Watch
from shared.outcomes import Outcome
from shared.sync.outcomes import BatchResults

CUSTOMER_KEEP = 50
ACCOUNT_KEEP = 500


def order_value(order: Any) -> Decimal:
    """An order's value before tax: lines' net + freight - order discount."""
    lines: Decimal = sum((line.net for line in order.lines), Decimal(0))
    return lines + Decimal(order.freight) - Decimal(order.discount)


def _keys(order: Any) -> tuple[str, str]:
    currency = order.currency or "-"
    customer = f"{order.customer.kind}|{order.customer.id.lower()}" if order.customer else "-"
    return f"orders|customer|{customer}|{currency}", f"orders|account|{currency}"


def _new_orders(batch: Any) -> list[Any]:
    return [r for r in batch.records if r.matched_by is None and r.decision is not None]


class OrderValueWatch(Watch):
    def before_write(self, flow: Any, batch: Any, results: BatchResults) -> list[Flag]:
        flags: list[Flag] = []
        accounts: dict[str, list[float]] = {}
        for r in _new_orders(batch):
            if results.has(r.source_id) or not r.decision.should_write:
                continue
            order = r.read.value
            customer_key, account_key = _keys(order)
            if account_key not in accounts:
                accounts[account_key] = read(self.context.values, account_key) or []
            own: list[float] = (read(self.context.values, customer_key) or []) if order.customer else []
            value = float(order_value(order))
            currency = order.currency or "(no currency)"
            if len(own) >= self.settings.order_customer_history:
                history, whose = own, "the customer's"
            elif len(accounts[account_key]) >= self.settings.order_account_history:
                history, whose = accounts[account_key], "the account's"
            else:
                continue  # too little history to call anything unusual
            verdict = judge(value, history, self.settings.order_value_threshold)
            if verdict.outlier:
                flags.append(
                    self.flag(
                        flow,
                        "OrderValue",
                        r.source_id,
                        f"{order.reference} value {value:g} {currency} is {verdict.score:.1f} robust "
                        f"deviations from {whose} median {verdict.median:g} "
                        f"over {len(history)} earlier orders "
                        f"(threshold {self.settings.order_value_threshold:g})",
                    )
                )
        return flags

    def after_settle(
        self, flow: Any, batch: Any, results: BatchResults, outcomes: Sequence[Outcome]
    ) -> list[Flag]:
        created = [
            r
            for r in _new_orders(batch)
            if (res := results.by_id.get(r.source_id)) is not None and res.kind == "synced" and res.created
        ]
        by_key: dict[str, list[float]] = {}
        for r in created:
            customer_key, account_key = _keys(r.read.value)
            value = float(order_value(r.read.value))
            by_key.setdefault(account_key, []).append(value)
            if r.read.value.customer is not None:
                by_key.setdefault(customer_key, []).append(value)
        for key, values in by_key.items():
            keep = ACCOUNT_KEEP if key.startswith("orders|account|") else CUSTOMER_KEEP
            update(self.context.values, key, _appending(values, keep))
        return []


def _appending(values: list[float], keep: int) -> Callable[[Any], list[float]]:
    """The change adding `values` to a stored history, keeping its newest `keep`."""

    def change(old: Any) -> list[float]:
        return [*(old or []), *values][-keep:]

    return change
