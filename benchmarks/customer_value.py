"""Customer value (issue 14 item 4): 10,000 order events for 1,000 customers -> how many
customer writes reach Dynamics, and whether the written figures are exact. One JSON with each
target and pass/fail.

The real flow (shared/flows/customer_value_to_dataverse.py) and flush
(shared/flows/customer_value_flush.py) on the in-memory fakes of the ports (shared/sync/fakes.py:
links, Dataverse tables with call counts) and the in-memory customer value store; Brightpearl's
orders come from an order book in this file answering the order GET as the API does (reference
§6.4), amounts as strings. `--orders` sales orders (default 10,000) spread over `--customers`
customers (default 1,000), each linked to a Dynamics contact, a third of them under 100 parent
accounts, in GBP, EUR and USD with dated rates (fixed exchange rates: the same date rule and
crossing as the real sources); every order is invoiced; one event per order (the order webhook),
in host batches of `--batch` (host.json's maxMessageBatchSize: 32) notices of one id.

Sections:
1. **coalesced** (the flush runs every `--flush-every` batches, default: once at the end, as when
   the events arrive within one flush period): customer writes = contact rows written by
   UpdateMultiple (target <= number of customers), Dataverse calls, and exactness: every
   contact's and account's columns equal the figures recomputed independently from the order
   book (Decimal arithmetic, half-even rounding to the cent, per transaction at its date's rate).
2. **duplicates**: every event delivered again (a redelivery after a restart): no contribution
   changes, no customer marked, no write; the figures stay exact.
3. **interleaved** (`--interleaved-every`, default 10 batches: the flush timer firing while
   events still arrive): writes grow with the flushes, each customer at most once per flush.

Usage: .venv/bin/python -m benchmarks.customer_value [--orders 10000] [--customers 1000]
       [--batch 32] [--interleaved-every 10] [--out benchmarks/results/customer_value.json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
import tracemalloc
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from shared.events import ChangeNotice, Envelope
from shared.flows.customer_value_config import CustomerValueMapping
from shared.flows.customer_value_flush import CustomerValueFlush
from shared.flows.customer_value_store import MemoryCustomerValueStore
from shared.flows.customer_value_to_dataverse import CustomerValueToDataverse
from shared.money.rates import FixedRates
from shared.sync.fakes import FakeDataverse, MemoryStateStore

RATES = {
    "EUR": [(date(2026, 1, 1), Decimal("1.17")), (date(2026, 4, 1), Decimal("1.15"))],
    "USD": [(date(2026, 1, 1), Decimal("1.27")), (date(2026, 3, 1), Decimal("1.30"))],
}
CENT = Decimal("0.01")


class OrderBook:
    """Brightpearl's order GET over a dictionary of orders (reference §6.4 shape)."""

    def __init__(self) -> None:
        self.orders: dict[int, dict[str, Any]] = {}
        self.calls = 0

    def get_by_ids(self, path: str, ids: Iterable[int], *, limit: int | None = 200, **_: Any) -> list[Any]:
        wanted = list(ids)
        self.calls += -(-len(wanted) // (limit or 200))
        return [self.orders[i] for i in wanted if i in self.orders]

    def search_orders(
        self, *, columns: Any = None, contactId: int | None = None, **_: Any
    ) -> list[dict[str, Any]]:
        self.calls += 1
        return [
            {"orderId": i}
            for i, o in self.orders.items()
            if o["parties"]["customer"]["contactId"] == contactId
        ]


def notice(order_id: int, at: datetime) -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity="order",
            ids=(str(order_id),),
            operation="updated",
            observed_at=at,
            source="/brightpearl/bench",
            origin="test",
            version=str(order_id),
        ),
    )


def expected(book: OrderBook, rates: FixedRates) -> dict[int, dict[str, Any]]:
    """Each customer's figures computed independently from the order book."""
    out: dict[int, dict[str, Any]] = {}
    for order in book.orders.values():
        customer = order["parties"]["customer"]["contactId"]
        fig = out.setdefault(customer, {"net": Decimal(0), "count": 0, "last": None})
        currency = order["currency"]["orderCurrencyCode"]
        on = date.fromisoformat(order["invoices"][0]["taxDate"][:10])
        rate = Decimal(1)
        if currency != "GBP":
            per = next(r for d, r in sorted(RATES[currency], reverse=True) if d <= on)
            rate = (Decimal(1) / per).quantize(Decimal("1E-12"), rounding=ROUND_HALF_EVEN)
        fig["net"] += (Decimal(order["totalValue"]["net"]) * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
        fig["count"] += 1
        placed = date.fromisoformat(order["placedOn"][:10])
        fig["last"] = max(fig["last"] or placed, placed)
    return out


class Rig:
    def __init__(self, args: argparse.Namespace) -> None:
        rng = random.Random(args.seed)
        self.book = OrderBook()
        self.dv = FakeDataverse()
        self.state = MemoryStateStore()
        self.values = MemoryCustomerValueStore()
        self.rates = FixedRates("GBP", RATES)
        mapping = CustomerValueMapping()
        self.contacts: dict[int, str] = {}
        self.accounts = [self.dv.add("accounts", {"name": f"Account {a}"}) for a in range(100)]
        for c in range(1, args.customers + 1):
            parent = {"_parentcustomerid_value": self.accounts[c % 100]} if c % 3 == 0 else {}
            contact = self.dv.add("contacts", {"lastname": f"C{c}", **parent})
            self.contacts[c] = contact
            self.state.links.link("customer", "brightpearl", str(c), "dataverse", contact)
        start = date(2026, 1, 1)
        for i in range(1, args.orders + 1):
            customer = rng.randint(1, args.customers)
            placed = start + timedelta(days=rng.randint(0, 180))
            self.book.orders[i] = {
                "id": i,
                "orderTypeCode": "SO",
                "orderStatus": {"orderStatusId": 4, "name": "Invoiced"},
                "orderPaymentStatus": "PAID",
                "placedOn": f"{placed.isoformat()}T10:00:00.000+00:00",
                "currency": {"orderCurrencyCode": rng.choice(["GBP", "GBP", "EUR", "USD"])},
                "totalValue": {"net": f"{Decimal(rng.randint(100, 99999)) / 100:.2f}"},
                "parties": {"customer": {"contactId": customer}},
                "invoices": [
                    {"invoiceReference": f"SI-{i}", "taxDate": (placed + timedelta(days=1)).isoformat()}
                ],
            }
        ports: Any = {
            "brightpearl": self.book,
            "dataverse": self.dv,
            "store": self.state,
            "publish": lambda e: None,
        }
        self.flow = CustomerValueToDataverse(mapping=mapping, rates=self.rates, values=self.values, **ports)
        self.flush = CustomerValueFlush(
            dataverse=self.dv, store=self.state, mapping=mapping, values=self.values, check_base=False
        )
        self.now = datetime(2026, 7, 1, tzinfo=UTC)

    def deliver(self, batch: int, flush_every: int | None) -> dict[str, Any]:
        ids = list(self.book.orders)
        writes_before = self.contact_writes()
        calls_before = len(self.dv.calls)
        flushes, started = 0, time.perf_counter()
        for n, start in enumerate(range(0, len(ids), batch), start=1):
            self.flow.handle([notice(i, self.now) for i in ids[start : start + batch]])
            if flush_every and n % flush_every == 0:
                self.flush.poll()
                flushes += 1
        self.flush.poll()
        flushes += 1
        made = self.dv.calls[calls_before:]
        calls = {k: made.count(k) for k in sorted(set(made))}
        return {
            "events": len(ids),
            "flushes": flushes,
            "contact_writes": self.contact_writes() - writes_before,
            "dataverse_calls": sum(calls.values()),
            "dataverse_calls_by_kind": calls,
            "seconds": round(time.perf_counter() - started, 2),
        }

    def contact_writes(self) -> int:
        return self.dv_rows_written

    @property
    def dv_rows_written(self) -> int:
        return sum(self._written.values())

    def install_counter(self) -> None:
        self._written: dict[str, int] = {"contacts": 0, "accounts": 0}
        original = self.dv.update_multiple

        def counting(entity_set: str, rows: Any, **kwargs: Any) -> Any:
            self._written[entity_set] = self._written.get(entity_set, 0) + len(rows)
            return original(entity_set, rows, **kwargs)

        self.dv.update_multiple = counting  # type: ignore[method-assign]

    def exactness(self) -> dict[str, Any]:
        want = expected(self.book, self.rates)
        wrong_contacts = []
        for customer, contact in self.contacts.items():
            row = self.dv.tables["contacts"][contact]
            fig = want.get(customer, {"net": Decimal(0), "count": 0, "last": None})
            ok = (
                Decimal(str(row.get("bpi_lifetimevalue", 0))).quantize(CENT) == fig["net"]
                and int(row.get("bpi_ordercount", 0)) == fig["count"]
                and (row.get("bpi_lastpurchasedate") or None)
                == (fig["last"].isoformat() if fig["last"] else None)
                and (
                    fig["count"] == 0
                    or Decimal(str(row["bpi_averageordervalue"])).quantize(CENT)
                    == (fig["net"] / fig["count"]).quantize(CENT, rounding=ROUND_HALF_EVEN)
                )
            )
            if not ok:
                wrong_contacts.append(customer)
        wrong_accounts = []
        for account in self.accounts:
            members = [
                c
                for c, contact in self.contacts.items()
                if self.dv.tables["contacts"][contact].get("_parentcustomerid_value") == account
            ]
            total = sum((want.get(c, {"net": Decimal(0)})["net"] for c in members), Decimal(0))
            held = Decimal(str(self.dv.tables["accounts"][account].get("bpi_lifetimevalue", 0))).quantize(
                CENT
            )
            if held != total:
                wrong_accounts.append(account)
        return {
            "customers_with_orders": len(want),
            "contacts_wrong": len(wrong_contacts),
            "accounts_wrong": len(wrong_accounts),
            "exact": not wrong_contacts and not wrong_accounts,
        }


def run(args: argparse.Namespace) -> dict[str, Any]:
    tracemalloc.start()
    rig = Rig(args)
    rig.install_counter()
    coalesced = rig.deliver(args.batch, None)
    coalesced["contact_writes"] = rig._written["contacts"]
    coalesced["account_writes"] = rig._written["accounts"]
    coalesced.update(rig.exactness())
    coalesced["target"] = f"contact writes <= {args.customers} and exact"
    coalesced["pass"] = coalesced["contact_writes"] <= args.customers and coalesced["exact"]

    before = dict(rig._written)
    duplicates = rig.deliver(args.batch, None)
    duplicates["contact_writes"] = rig._written["contacts"] - before["contacts"]
    duplicates["account_writes"] = rig._written["accounts"] - before["accounts"]
    duplicates.update(rig.exactness())
    duplicates["target"] = "no write and still exact"
    duplicates["pass"] = duplicates["contact_writes"] == 0 and duplicates["exact"]

    fresh = Rig(args)
    fresh.install_counter()
    interleaved = fresh.deliver(args.batch, args.interleaved_every)
    interleaved["contact_writes"] = fresh._written["contacts"]
    interleaved["account_writes"] = fresh._written["accounts"]
    interleaved.update(fresh.exactness())
    interleaved["target"] = "each customer at most once per flush, exact"
    interleaved["pass"] = (
        interleaved["contact_writes"] <= args.customers * interleaved["flushes"] and interleaved["exact"]
    )
    _, peak = tracemalloc.get_traced_memory()
    return {
        "benchmark": "customer_value",
        "orders": args.orders,
        "customers": args.customers,
        "batch": args.batch,
        "coalesced": coalesced,
        "duplicates": duplicates,
        "interleaved": interleaved,
        "peak_memory_mb": round(peak / 1e6, 1),
        "pass": coalesced["pass"] and duplicates["pass"] and interleaved["pass"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--interleaved-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/customer_value.json"))
    args = parser.parse_args(argv)
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
