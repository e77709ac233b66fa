"""The admin surface of the catalogue (`/_sandbox/catalogue/...`): what a Brightpearl user or
warehouse does to products, prices and stock, in bulk, for tests and benchmarks (a 5,000-event
stock storm is one request). Each change goes through the same store methods as the API, so
it moves `updatedOn`/`version` and raises the same webhooks, one per change.

- `POST seed {"products"?, "seed"?, "warehouses"?, "archived"?, "services"?}`: `seed_catalogue`.
- `POST sku-variations {"seed"?}`: `seed_sku_variations` (the SKU matching variations); answers
  `{"products": {case: product id}}`.
- `POST stock {"corrections": [{"productId", "warehouseId", "quantity"}]}`: one stock
  correction each.
- `POST stock {"storm": {"productIds", "events", "warehouseId"?, "seed"?, "maxDelta"?}}`:
  `events` random corrections of 1..maxDelta units over the products (never below zero).
- `POST prices {"prices": [{"productId", "priceListId", "quantityPrice": {...} or null}]}`:
  set (replace) or remove a list's prices.
- `POST prices {"productIds", "priceListId", "factor"}`: multiply every quantity break of
  that list.
- `POST status {"productIds", "status": "ARCHIVED" or "LIVE"}`: archive / bring back.
- `POST destroy {"productIds"}`: delete (`product.destroyed`).

Answers: stock calls give each product's availability total afterwards (`{"applied": n,
"totals": {id: {inStock, onHand, allocated, inTransit}}}`); the others `{"changed": [ids]}`.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sandbox.brightpearl.catalogue_seed import seed_catalogue, seed_sku_variations
from sandbox.brightpearl.errors import ApiError
from sandbox.brightpearl.records.amounts import fmt, money
from sandbox.brightpearl.state import SimState

if TYPE_CHECKING:
    from sandbox.brightpearl.app import Simulator


def handle_catalogue_admin(
    sim: Simulator, method: str, parts: list[str], body: dict[str, Any]
) -> tuple[int, Any]:
    state = sim.state
    what = parts[0] if len(parts) == 1 and method == "POST" else None
    if what == "seed":
        created = seed_catalogue(
            state,
            products=int(body.get("products", 300)),
            seed=int(body.get("seed", 12)),
            warehouses=tuple(body.get("warehouses", (2, 3))),
            archived=int(body.get("archived", 6)),
            services=int(body.get("services", 5)),
        )
        return 200, created.summary()
    if what == "sku-variations":
        return 200, {"products": seed_sku_variations(state, seed=int(body.get("seed", 18)))}
    if what == "stock":
        corrections = _storm(state, body["storm"]) if "storm" in body else _list(body, "corrections")
        return 200, _correct(state, corrections)
    if what == "prices":
        return 200, {"changed": _prices(state, body)}
    if what == "status":
        ids = _ids(body)
        for pid in ids:
            state.set_product_status(pid, str(body.get("status")))
        return 200, {"changed": ids}
    if what == "destroy":
        ids = _ids(body)
        for pid in ids:
            state.destroy_product(pid)
        return 200, {"changed": ids}
    raise ApiError(404, "not-found", f"no admin endpoint {method} /_sandbox/catalogue/{'/'.join(parts)}")


def _list(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key)
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"{key} must be a non-empty list of objects")
    return items


def _ids(body: dict[str, Any]) -> list[int]:
    ids = body.get("productIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise ValueError("productIds must be a non-empty list of product ids")
    return ids


def _storm(state: SimState, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """`events` random corrections of 1..maxDelta units over `productIds` in one warehouse;
    a removal never takes a product below zero there."""
    ids = _ids(spec)
    events, warehouse = int(spec.get("events", 0)), int(spec.get("warehouseId", 2))
    if events < 1:
        raise ValueError("storm.events must be at least 1")
    rng = random.Random(int(spec.get("seed", 1)))
    max_delta = int(spec.get("maxDelta", 5))
    with state.lock:
        level = {pid: state.stock.get(pid, {}).get(warehouse, 0) for pid in ids}
    out = []
    for _ in range(events):
        pid = rng.choice(ids)
        delta = rng.randint(1, max_delta)
        if level[pid] >= delta and rng.random() < 0.5:
            delta = -delta
        level[pid] += delta
        out.append({"productId": pid, "warehouseId": warehouse, "quantity": delta})
    return out


def _correct(state: SimState, corrections: list[dict[str, Any]]) -> dict[str, Any]:
    touched: list[int] = []
    for i, c in enumerate(corrections):
        try:
            pid, warehouse, qty = int(c["productId"]), int(c["warehouseId"]), int(c["quantity"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"corrections[{i}] needs integer productId, warehouseId and quantity") from exc
        try:
            state.adjust_stock(pid, warehouse, qty)
        except ApiError as exc:
            raise ApiError(
                exc.status, exc.code, f"corrections[{i}] ({i} applied before): {exc.message}"
            ) from exc
        if pid not in touched:
            touched.append(pid)
    with state.lock:
        totals = {str(pid): (state.availability(pid) or {}).get("total") for pid in touched}
    return {"applied": len(corrections), "totals": totals}


def _prices(state: SimState, body: dict[str, Any]) -> list[int]:
    if "factor" in body:
        factor = money(body["factor"], "factor")
        plid = body.get("priceListId")
        changes = []
        with state.lock:
            for pid in _ids(body):
                breaks = state.prices.get(pid, {}).get(plid)
                if breaks is None:
                    raise ValueError(f"product {pid} has no prices in price list {plid!r}")
                scaled = {q: fmt(Decimal(p) * factor, 2) for q, p in breaks.items()}
                changes.append({"productId": pid, "priceListId": plid, "quantityPrice": scaled})
    else:
        changes = _list(body, "prices")
    changed = []
    for i, change in enumerate(changes):
        pid, plid = change.get("productId"), change.get("priceListId")
        if not isinstance(pid, int) or not isinstance(plid, int):
            raise ValueError(f"prices[{i}] needs integer productId and priceListId")
        if change.get("quantityPrice") is None:
            state.remove_prices(pid, plid)
        else:
            state.set_prices(
                pid, {"priceLists": [{"priceListId": plid, "quantityPrice": change["quantityPrice"]}]}
            )
        changed.append(pid)
    return changed
