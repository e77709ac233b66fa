"""Fulfilment automation (issue 18 item 1): Brightpearl and Dataverse calls per order for allocation
(reservations) and goods-out notes, and exactly once; one JSON.

The real flow (shared/flows/fulfilment.py) with the real clients against both simulators over
loopback, built on benchmarks/orders.py's Shop (customers and products on both sides, linked; the
orders made in Dynamics and created in Brightpearl by the real orders-to-brightpearl flow, so their
rows name their Dynamics lines); the state store in memory; calls are what the simulators answered.

1. **in_stock**: `--orders` orders of `--lines` lines with enough stock in warehouse 2 are moved to
   "Ready to ship" (one `order.modified.order-status` webhook each: one id per notice, the worst
   case) and handed to the flow in host.json batches. Counted: Brightpearl calls per order (by
   route: order GET and goods-out-note GET and availability per batch; per order one reservation
   GET, one reservation POST per warehouse, one goods-out POST) and Dataverse calls per order (the
   lines read in bulk, one $batch).
2. **short_then_stocked**: `--orders` more orders, with stock for about half their units; then stock
   arrives for every product (stock corrections, as goods in) and the flow gets one `product-stock`
   notice per product (the on-hand webhooks). Counted for both passes, per order.
Each section checks that every row is on goods-out notes exactly once (never more than ordered)
and that no reservation is left.

Usage: .venv/bin/python -m benchmarks.fulfilment [--orders 200] [--lines 3]
       [--out benchmarks/results/fulfilment.json]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.catalogue import Counted, host_batch_size, write  # noqa: E402
from benchmarks.orders import Shop, brightpearl_notices, handled, order_notices  # noqa: E402
from shared.events import Envelope, notices_in_chunks  # noqa: E402
from shared.flows.fulfilment import FulfilmentToBrightpearl  # noqa: E402
from shared.flows.stock_spec import STOCK_ENTITY  # noqa: E402
from shared.mapping.fulfilment_config import FulfilmentSettings  # noqa: E402

READY = "Ready to ship"
WAREHOUSE = 2


def stock_notices(product_ids: list[int]) -> list[Envelope]:
    """One `product-stock` notice per product, as the on-hand webhooks bring them."""
    return [
        envelope
        for pid in product_ids
        for envelope in notices_in_chunks(
            "brightpearl",
            STOCK_ENTITY,
            [str(pid)],
            per_notice=1,
            version=uuid.uuid4().hex,
            source="/brightpearl/bench",
            origin="webhook",
            observed_at=datetime.now(UTC),
        )
    ]


class Bench:
    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.state = shop.bp_state
        self.batch = host_batch_size()
        with self.state.lock:
            found = [s for s, v in self.state.order_statuses.items() if v["name"] == READY]
        self.ready = (
            found[0] if found else self.state.create_order_status({"name": READY, "orderTypeCode": "SO"})
        )

    def flow(self) -> FulfilmentToBrightpearl:
        settings = FulfilmentSettings(enabled=True, warehouses=(WAREHOUSE,))
        return FulfilmentToBrightpearl(settings=settings, **self.shop.ports())

    def brightpearl_orders(self, count: int, lines: int) -> list[int]:
        """`count` Dynamics orders created in Brightpearl by orders-to-brightpearl (not counted)."""
        ids = self.shop.submitted_orders(count, lines)
        handled(self.shop.to_brightpearl(), order_notices(ids), self.batch)
        found = self.shop.brightpearl_orders(ids)
        return sorted(int(orders[0]["id"]) for orders in found.values())

    def units(self, order_ids: list[int]) -> Counter[int]:
        """Product id -> units the orders want."""
        wanted: Counter[int] = Counter()
        with self.state.lock:
            for oid in order_ids:
                for row in self.state.orders[oid]["orderRows"].values():
                    if row.get("productId"):
                        wanted[int(row["productId"])] += int(float(row["quantity"]["magnitude"]))
        return wanted

    def add_stock(self, units: dict[int, int]) -> None:
        corrections = [
            {"productId": pid, "quantity": n, "reason": "Benchmark goods in", "locationId": 2}
            for pid, n in units.items()
            if n > 0
        ]
        if corrections:
            self.state.correct_stock(WAREHOUSE, {"corrections": corrections})

    def ready_to_ship(self, order_ids: list[int]) -> None:
        for oid in order_ids:
            self.state.set_order_status(oid, {"orderStatusId": self.ready})

    def check(self, order_ids: list[int]) -> dict[str, Any]:
        """No row on goods-out notes beyond its quantity, no reservation left un-noted; `complete`: every
        row fully noted."""
        over = short = left = 0
        notes = 0
        with self.state.lock:
            for oid in order_ids:
                order = self.state.orders[oid]
                for rid, row in order["orderRows"].items():
                    if not row.get("productId"):
                        continue
                    noted = int(self.state._noted(oid, rid))
                    wanted = int(float(row["quantity"]["magnitude"]))
                    over += noted > wanted
                    short += noted < wanted
                held = self.state.reservations.get(oid, {})
                left += sum(q for rows in held.values() for q in rows.values())
                notes += sum(1 for n in self.state.goods_out.values() if n["orderId"] == oid)
        return {
            "rows_over_noted": over,
            "rows_short": short,
            "units_left_reserved": left,
            "goods_out_notes": notes,
            "exactly_once": over == 0 and left == 0,  # nothing noted twice, nothing reserved and not noted
            "complete": short == 0,
        }


def per_order(counted: Counted, orders: int) -> dict[str, Any]:
    bp, dv = sum(counted.bp.values()), sum(counted.dv.values())
    return {
        "seconds": round(counted.seconds, 2),
        "brightpearl_calls": bp,
        "brightpearl_calls_per_order": round(bp / orders, 3),
        "dataverse_calls": dv,
        "dataverse_calls_per_order": round(dv / orders, 3),
        "brightpearl_calls_by_route": counted.bp,
        "dataverse_calls_by_kind": counted.dv,
    }


def in_stock_section(bench: Bench, orders: int, lines: int) -> dict[str, Any]:
    ids = bench.brightpearl_orders(orders, lines)
    bench.add_stock(dict(bench.units(ids)))
    bench.ready_to_ship(ids)
    with Counted(bench.shop.rig) as counted:
        outcomes = handled(bench.flow(), brightpearl_notices([[str(i)] for i in ids]), bench.batch)
    return {
        "orders": len(ids),
        "lines_per_order": lines,
        **per_order(counted, len(ids)),
        "outcomes": outcomes,
        **bench.check(ids),
    }


def short_section(bench: Bench, orders: int, lines: int) -> dict[str, Any]:
    ids = bench.brightpearl_orders(orders, lines)
    wanted = bench.units(ids)
    levels = {pid: bench.state.availability(pid) for pid in wanted}
    on_hand = {
        pid: int((lv or {}).get("warehouses", {}).get(str(WAREHOUSE), {}).get("onHand", 0))
        for pid, lv in levels.items()
    }
    bench.add_stock({pid: n // 2 - on_hand[pid] for pid, n in wanted.items()})  # about half
    bench.ready_to_ship(ids)
    with Counted(bench.shop.rig) as first:
        first_outcomes = handled(bench.flow(), brightpearl_notices([[str(i)] for i in ids]), bench.batch)
    partial = bench.check(ids)
    bench.add_stock(dict(wanted))  # plenty arrives for every product
    with Counted(bench.shop.rig) as second:
        second_outcomes = handled(bench.flow(), stock_notices(sorted(wanted)), bench.batch)
    return {
        "orders": len(ids),
        "lines_per_order": lines,
        "first_pass_short_stock": {**per_order(first, len(ids)), "outcomes": first_outcomes, **partial},
        "second_pass_stock_arrived": {
            **per_order(second, len(ids)),
            "product_notices": len(wanted),
            "outcomes": second_outcomes,
            **bench.check(ids),
        },
        "brightpearl_calls_per_order_both_passes": round(
            (sum(first.bp.values()) + sum(second.bp.values())) / len(ids), 3
        ),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "fulfilment (benchmarks/fulfilment.py, issue 18 item 1)",
        "python": platform.python_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "mode": "real flow fulfilment-to-brightpearl in this process, real clients, both simulators over "
        "loopback (zero latency, no rate limit), state store in memory; one order id per notice, "
        "host.json maxMessageBatchSize notices a batch",
    }
    shop = Shop()
    try:
        bench = Bench(shop)
        print(f"[in stock] {args.orders} orders x {args.lines} lines", flush=True)
        results["in_stock"] = in_stock_section(bench, args.orders, args.lines)
        write(args.out, results)
        print(f"[short, then stock arrives] {args.orders} orders x {args.lines} lines", flush=True)
        results["short_then_stocked"] = short_section(bench, args.orders, args.lines)
    finally:
        shop.close()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    write(args.out, results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200, help="orders per section (default 200)")
    parser.add_argument("--lines", type=int, default=3, help="lines per order (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fulfilment.json")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.lines < 1:
        parser.error("--orders and --lines must be at least 1")
    results = run(args)
    ok = (
        results["in_stock"]["exactly_once"]
        and results["short_then_stocked"]["second_pass_stock_arrived"]["exactly_once"]
    )
    print(f"wrote {args.out}; exactly once: {ok}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
