"""Customer value state: each Brightpearl transaction's contribution, per customer, and the
customers whose figures changed since the last flush (issue 14 item 4).

A contribution is what one sales order or sales credit adds to its customer: its net in the
base currency, the original amount and currency, and the exchange rate used and its date (the
rate is recorded here, so an operator sees it and a recompute reuses it instead of a rate that
moved since). A customer's figures are derived from its stored contributions (`CustomerValue.of`),
never from Brightpearl history: an event replaces one contribution (keyed by the transaction, so
a duplicate or a redelivery after a restart replaces it with the same value) and marks the
customer dirty; the flush writes dirty customers once each.

Kept in the state store's `cursors` table (the existing store helpers, shared/store), out of the
pollers' sight: partition `cv|<Brightpearl contact id>` holds that customer's contributions (one
row per transaction, RowKey = the transaction key), partition `cv-dirty` one marker row per
customer to write. `MemoryCustomerValueStore` is the same on dictionaries (unit tests, benchmark).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Protocol

from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel, ConfigDict

from shared.money.rates import quantize
from shared.store.errors import StoreConflictError
from shared.store.tables import (
    escape_key,
    etag_of,
    query,
    rows_by_keys,
    translate_errors,
    unescape_key,
    write_in_transactions,
)

DIRTY = "cv-dirty"
Kind = Literal["order", "credit"]


class Contribution(BaseModel):
    """What one Brightpearl sales order or sales credit adds to its customer's figures."""

    model_config = ConfigDict(frozen=True)

    txn: str  # "order-123" | "credit-456" (the store key)
    customer: str  # Brightpearl contact id
    kind: Kind
    counted: bool  # an invoiced order / a credit not cancelled
    net: Decimal  # in the base currency, quantised; positive for both kinds
    amount: Decimal  # the transaction's own net, in `currency`
    currency: str
    rate: Decimal  # amount x rate = net (before quantising)
    rate_on: date  # the transaction date the rate is for
    rate_source: str
    placed: date | None = None  # an order's placed date (last purchase)
    open_return: bool = False  # a credit not refunded or closed yet

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> Contribution:
        return cls.model_validate_json(text)


class CustomerValue(BaseModel):
    """A customer's figures as written to Dynamics (bpi_* columns)."""

    model_config = ConfigDict(frozen=True)

    lifetime_value: Decimal = Decimal("0.00")
    orders_net: Decimal = Decimal("0.00")
    order_count: int = 0
    average_order_value: Decimal | None = None
    last_purchase: date | None = None
    open_returns: int = 0

    @classmethod
    def of(cls, contributions: Iterable[Contribution], places: int = 2) -> CustomerValue:
        """The figures of a customer (or, summed, of an account) from its contributions."""
        orders_net, credits_net, count, returns = Decimal(0), Decimal(0), 0, 0
        last: date | None = None
        for c in contributions:
            if c.kind == "order" and c.counted:
                orders_net += c.net
                count += 1
                if c.placed is not None and (last is None or c.placed > last):
                    last = c.placed
            elif c.kind == "credit" and c.counted:
                credits_net += c.net
                returns += 1 if c.open_return else 0
        return cls(
            lifetime_value=quantize(orders_net - credits_net, places),
            orders_net=quantize(orders_net, places),
            order_count=count,
            average_order_value=quantize(orders_net / count, places) if count else None,
            last_purchase=last,
            open_returns=returns,
        )

    @classmethod
    def total(cls, values: Iterable[CustomerValue], places: int = 2) -> CustomerValue:
        """The figures of several customers together (a parent account's)."""
        items = list(values)
        orders_net = sum((v.orders_net for v in items), Decimal(0))
        count = sum(v.order_count for v in items)
        dates = [v.last_purchase for v in items if v.last_purchase is not None]
        return cls(
            lifetime_value=quantize(sum((v.lifetime_value for v in items), Decimal(0)), places),
            orders_net=quantize(orders_net, places),
            order_count=count,
            average_order_value=quantize(orders_net / count, places) if count else None,
            last_purchase=max(dates) if dates else None,
            open_returns=sum(v.open_returns for v in items),
        )


class CustomerValueStore(Protocol):
    """Where contributions and dirty markers live (Table Storage or memory)."""

    def contributions(self, customer: str) -> dict[str, Contribution]: ...

    def contributions_of(self, customer: str, txns: Iterable[str]) -> dict[str, Contribution]: ...

    def put(self, customer: str, upserts: Iterable[Contribution], deletes: Iterable[str] = ()) -> None: ...

    def mark_dirty(self, customers: Iterable[str]) -> None: ...

    def dirty(self, limit: int = 1000) -> dict[str, str]:
        """Customer -> the marker's version (pass it back to `clear_dirty`)."""
        ...

    def clear_dirty(self, markers: Mapping[str, str]) -> None:
        """Remove the markers still at the version read (a customer marked again meanwhile stays)."""
        ...


def _partition(customer: str) -> str:
    return f"cv|{escape_key(customer, field='customer id')}"


class TableCustomerValueStore:
    """CustomerValueStore on a Table Storage table (the state store's `cursors` table)."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    @property
    def name(self) -> str:
        return str(self.table.table_name)

    def contributions(self, customer: str) -> dict[str, Contribution]:
        rows = query(
            self.table,
            "PartitionKey eq @pk",
            {"pk": _partition(customer)},
            "read customer value contributions",
            select=["RowKey", "value"],
            page_size=1000,
        )
        return {unescape_key(str(r["RowKey"])): Contribution.from_json(str(r["value"])) for r in rows}

    def contributions_of(self, customer: str, txns: Iterable[str]) -> dict[str, Contribution]:
        keys = [escape_key(t, field="transaction") for t in txns]
        rows = rows_by_keys(self.table, _partition(customer), keys, "read customer value contributions")
        return {unescape_key(k): Contribution.from_json(str(r["value"])) for k, r in rows.items()}

    def put(self, customer: str, upserts: Iterable[Contribution], deletes: Iterable[str] = ()) -> None:
        pk = _partition(customer)
        rows = [
            {"PartitionKey": pk, "RowKey": escape_key(c.txn, field="transaction"), "value": c.to_json()}
            for c in upserts
        ]
        gone = [{"PartitionKey": pk, "RowKey": escape_key(t, field="transaction")} for t in deletes]
        write_in_transactions(self.table, "upsert", rows, "record customer value contributions")
        write_in_transactions(self.table, "delete", gone, "remove customer value contributions")

    def mark_dirty(self, customers: Iterable[str]) -> None:
        rows = [
            {"PartitionKey": DIRTY, "RowKey": escape_key(c, field="customer id"), "value": "dirty"}
            for c in dict.fromkeys(customers)
        ]
        write_in_transactions(self.table, "upsert", rows, "mark customer values to write")

    def dirty(self, limit: int = 1000) -> dict[str, str]:
        out: dict[str, str] = {}
        for row in query(
            self.table,
            "PartitionKey eq @pk",
            {"pk": DIRTY},
            "read customer values to write",
            page_size=min(limit, 1000),
        ):
            out[unescape_key(str(row["RowKey"]))] = etag_of(row)
            if len(out) >= limit:
                break
        return out

    def clear_dirty(self, markers: Mapping[str, str]) -> None:
        for customer, etag in markers.items():
            rk = escape_key(customer, field="customer id")
            try:
                with translate_errors(self.name, "clear customer value marker", DIRTY, rk):
                    self.table.delete_entity(
                        DIRTY, rk, etag=etag, match_condition=MatchConditions.IfNotModified
                    )
            except StoreConflictError:
                continue  # marked again since it was read: the next flush writes it again

    def save_text(self, partition: str, name: str, text: str) -> None:
        """A small JSON value (e.g. the recompute's cursor) under its own partition."""
        with translate_errors(self.name, "save customer value state", partition, name):
            self.table.upsert_entity(
                {"PartitionKey": partition, "RowKey": escape_key(name, field="name"), "value": text},
                mode=UpdateMode.REPLACE,
            )


class MemoryCustomerValueStore:
    """CustomerValueStore on dictionaries (unit tests, the benchmark): the same semantics."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Contribution]] = {}
        self.markers: dict[str, int] = {}
        self._version = 0
        self.calls: dict[str, int] = {}

    def _count(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1

    def contributions(self, customer: str) -> dict[str, Contribution]:
        self._count("contributions")
        return dict(self.rows.get(customer, {}))

    def contributions_of(self, customer: str, txns: Iterable[str]) -> dict[str, Contribution]:
        self._count("contributions_of")
        held = self.rows.get(customer, {})
        return {t: held[t] for t in txns if t in held}

    def put(self, customer: str, upserts: Iterable[Contribution], deletes: Iterable[str] = ()) -> None:
        self._count("put")
        held = self.rows.setdefault(customer, {})
        for c in upserts:
            held[c.txn] = c
        for t in deletes:
            held.pop(t, None)

    def mark_dirty(self, customers: Iterable[str]) -> None:
        self._count("mark_dirty")
        for c in customers:
            self._version += 1
            self.markers[c] = self._version

    def dirty(self, limit: int = 1000) -> dict[str, str]:
        return {c: str(v) for c, v in list(self.markers.items())[:limit]}

    def clear_dirty(self, markers: Mapping[str, str]) -> None:
        for customer, version in markers.items():
            if str(self.markers.get(customer)) == version:
                del self.markers[customer]


def store_for(state: Any) -> CustomerValueStore:
    """The customer value store of a state store: its `cursors` table, or memory for the fakes."""
    table = getattr(getattr(state, "cursors", None), "table", None)
    if table is not None:
        return TableCustomerValueStore(table)
    existing = getattr(state, "customer_value", None)
    if existing is None:
        existing = MemoryCustomerValueStore()
        state.customer_value = existing
    return existing


def report_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)
