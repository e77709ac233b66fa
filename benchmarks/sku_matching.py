"""SKU matching (issue 18 item 2): the match rate on the seeded variations, and Brightpearl calls
per order against a naive per-line lookup; one JSON.

The real matcher (shared/mapping/sku_match.py) and the real Brightpearl client against the
Brightpearl simulator over loopback (no latency, no rate limit), its catalogue seeded by
sandbox/brightpearl/catalogue_seed.py (`--catalogue` products) plus `SKU_VARIATIONS`; the
settings are mappings/orders.yaml's `sku_matching` with the channel prefix WEB- stripped
(`channels.default.strip_prefixes`), as the e2e tests (tests/e2e/sku_matching) have it. The
Dynamics side (each product's name and bpi_ean) comes from the variation table, as the flow's
one `In` query on products would bring it; that query is counted as Dataverse calls.

1. **variations**: each seeded variation as an order of its own (its own batch): matched (and
   how), sent to review (with the candidates and their scores) or unknown, against what the
   seed expects (`SkuVariation.expect`).
2. **calls**: `--orders` orders of `--lines` lines, each line a catalogue product under its own
   SKU or (one in `--varied`) a variation spelt as Dynamics has it, handed over in batches of
   host.json's `maxMessageBatchSize` orders as the flow receives them: **batched** = one
   matcher per batch (exact look-ups per distinct SKU, the catalogue index read at most once per
   batch); **naive** = the same stages per line with nothing shared (an exact look-up per line,
   the catalogue read again for each line the exact stages leave). Brightpearl calls per order
   for both, and the ratio; beside them the lookup before issue 18 (exact SKU only, one
   product-search per distinct SKU of a batch) with the lines it matched.

Usage: .venv/bin/python -m benchmarks.sku_matching [--catalogue 2000] [--orders 500] [--lines 3]
       [--varied 0.1] [--out benchmarks/results/sku_matching.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.brightpearl import SimulatorServer as BrightpearlServer  # noqa: E402
from sandbox.brightpearl.catalogue_seed import SKU_VARIATIONS, seed_catalogue, seed_sku_variations  # noqa: E402
from shared.brightpearl.client import BrightpearlClient  # noqa: E402
from shared.brightpearl.ratebudget import RateBudget  # noqa: E402
from shared.brightpearl.settings import BrightpearlSettings  # noqa: E402
from shared.dataverse import odata  # noqa: E402
from shared.mapping.orders_config import load_order_mapping  # noqa: E402
from shared.mapping.sku_match import ChannelAffixes, ProductQuery, SkuMatcher, SkuMatching  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "sku_matching.json"


def settings() -> SkuMatching:
    shipped = load_order_mapping().sku_matching
    return shipped.model_copy(update={"channels": {"default": ChannelAffixes(strip_prefixes=("WEB-",))}})


class Rig:
    """The Brightpearl simulator with the catalogue and the variations, and a client counting
    what the simulator answered."""

    def __init__(self, catalogue: int) -> None:
        self.server = BrightpearlServer(
            seed_contacts=0, seed_products=0, seed_orders=0, rate_limit=10_000_000
        ).start()
        state = self.server.simulator.state
        seed_catalogue(state, products=catalogue)
        self.variations = seed_sku_variations(state)
        with state.lock:
            self.skus = sorted(
                p["identity"]["sku"]
                for p in state.products.values()
                if p["identity"].get("sku") and p.get("status") != "ARCHIVED"
            )
        values = {
            "BRIGHTPEARL_ACCOUNT": self.server.account,
            "BRIGHTPEARL_BASE_URL": self.server.url,
            "BRIGHTPEARL_APP_REF": "sandbox-app",
            "BRIGHTPEARL_ACCOUNT_TOKEN": "sandbox-account-token",
        }
        self.bp = BrightpearlClient.from_settings(
            BrightpearlSettings.model_validate(values), budget=RateBudget(10_000_000, 60.0)
        )

    def calls(self) -> int:
        sim = self.server.simulator
        with sim._faults_lock:
            return sum(sim.requests.values())

    def close(self) -> None:
        self.bp.close()
        self.server.stop()


class Dynamics:
    """What the flow's `In` query on products would bring (name, bpi_ean), counted as queries."""

    def __init__(self) -> None:
        self.queries = 0
        self.by_sku = {v.dynamics_sku: v for v in SKU_VARIATIONS}

    def enrich(self, queries: list[ProductQuery]) -> list[ProductQuery]:
        products = [str(uuid.uuid5(uuid.NAMESPACE_OID, q.sku)) for q in queries]  # one GUID a product
        self.queries += len(list(odata.in_chunks("productid", products)))  # as the flow chunks them
        out = []
        for q in queries:
            v = self.by_sku.get(q.sku)
            name = (v.dynamics_name or v.name) if v else None
            out.append(ProductQuery(q.sku, q.product_id, name, {"ean": v.ean} if v and v.ean else {}))
        return out


def variations(rig: Rig, config: SkuMatching) -> dict[str, Any]:
    rows, counts = [], Counter()
    for v in SKU_VARIATIONS:
        before = rig.calls()
        dv = Dynamics()
        found = SkuMatcher(rig.bp, config).match([ProductQuery(v.dynamics_sku, v.case)], enrich=dv.enrich)
        m = found[v.dynamics_sku]
        if m.matched:
            got = m.method or "matched"
            counts["matched"] += 1
        elif m.needs_review:
            got = "review"
            counts["review"] += 1
        else:
            got = "unknown"
            counts["unknown"] += 1
        right = m.product_id == rig.variations.get(v.case) if m.matched else True
        rows.append(
            {
                "case": v.case,
                "dynamics_sku": v.dynamics_sku,
                "brightpearl_sku": v.brightpearl_sku,
                "expected": v.expect,
                "got": got,
                "as_designed": (got == v.expect or (v.expect == "normalised" and got == "normalised"))
                and right,
                "candidates": [
                    {"product_id": c.product_id, "sku": c.sku, "score": c.score, "why": c.why}
                    for c in m.candidates
                ],
                "brightpearl_calls": rig.calls() - before,
                "dataverse_queries": dv.queries,
            }
        )
    total = len(rows)
    return {
        "variations": total,
        "matched": counts["matched"],
        "review": counts["review"],
        "unknown": counts["unknown"],
        "match_rate": round(counts["matched"] / total, 3),
        "resolved_or_reviewed_rate": round((counts["matched"] + counts["review"]) / total, 3),
        "all_as_designed": all(r["as_designed"] for r in rows),
        "cases": rows,
    }


def orders(rng: random.Random, rig: Rig, count: int, lines: int, varied: float) -> list[list[str]]:
    spelt = [v.dynamics_sku for v in SKU_VARIATIONS]
    return [
        [rng.choice(spelt) if rng.random() < varied else rng.choice(rig.skus) for _ in range(lines)]
        for _ in range(count)
    ]


def calls(rig: Rig, config: SkuMatching, batches: list[list[list[str]]]) -> dict[str, Any]:
    count = sum(len(b) for b in batches)
    dv = Dynamics()
    started, before = time.perf_counter(), rig.calls()
    matched = 0
    for batch in batches:
        queries = [ProductQuery(sku) for order in batch for sku in order]
        found = SkuMatcher(rig.bp, config).match(queries, enrich=dv.enrich)
        matched += sum(1 for order in batch for sku in order if found[sku].matched)
    batched = rig.calls() - before
    batched_seconds = time.perf_counter() - started
    naive_dv = Dynamics()
    started, before = time.perf_counter(), rig.calls()
    naive_matched = 0
    for batch in batches:
        for order in batch:
            for sku in order:
                one = SkuMatcher(rig.bp, config).match([ProductQuery(sku)], enrich=naive_dv.enrich)
                naive_matched += one[sku].matched
    naive = rig.calls() - before
    naive_seconds = time.perf_counter() - started
    exact_only = SkuMatching(
        normalise={"enabled": False},
        fuzzy={"enabled": False},
        catalogue_max_pages=0,  # type: ignore[arg-type]
    )
    before_calls, before_matched = rig.calls(), 0
    for batch in batches:
        found = SkuMatcher(rig.bp, exact_only).match([ProductQuery(sku) for order in batch for sku in order])
        before_matched += sum(1 for order in batch for sku in order if found[sku].matched)
    before = rig.calls() - before_calls
    return {
        "orders": count,
        "lines": sum(len(o) for b in batches for o in b),
        "batches": len(batches),
        "batched": {
            "brightpearl_calls": batched,
            "brightpearl_calls_per_order": round(batched / count, 3),
            "dataverse_queries": dv.queries,
            "lines_matched": matched,
            "seconds": round(batched_seconds, 2),
        },
        "naive_per_line": {
            "brightpearl_calls": naive,
            "brightpearl_calls_per_order": round(naive / count, 3),
            "dataverse_queries": naive_dv.queries,
            "lines_matched": naive_matched,
            "seconds": round(naive_seconds, 2),
        },
        "ratio_naive_to_batched": round(naive / batched, 1) if batched else None,
        "exact_only_before_issue_18": {
            "brightpearl_calls": before,
            "brightpearl_calls_per_order": round(before / count, 3),
            "lines_matched": before_matched,
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogue", type=int, default=2000, help="Brightpearl catalogue products")
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--varied", type=float, default=0.1, help="share of lines spelt otherwise")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    batch = int(
        json.loads((ROOT / "host.json").read_text())["extensions"]["serviceBus"]["maxMessageBatchSize"]
    )
    config = settings()
    rig = Rig(args.catalogue)
    try:
        all_orders = orders(random.Random(args.seed), rig, args.orders, args.lines, args.varied)
        result = {
            "benchmark": "SKU matching: match rate on the seeded variations; Brightpearl calls per order, "
            "batched vs a naive per-line lookup",
            "python": platform.python_version(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "catalogue_products": len(rig.skus),
            "settings": config.model_dump(mode="json"),
            "variations": variations(rig, config),
            "calls": {
                "varied_share": args.varied,
                "batch_size": batch,
                **calls(rig, config, [all_orders[i : i + batch] for i in range(0, len(all_orders), batch)]),
            },
        }
    finally:
        rig.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
