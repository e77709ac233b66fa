"""SKU matching that survives real catalogues (issue 18 item 2), through the whole sandbox: a CRM
user orders products of an existing Dynamics catalogue whose product numbers are spelt otherwise
than the Brightpearl SKUs (sandbox/brightpearl/catalogue_seed.py `SKU_VARIATIONS`):

- exact, mixed case, separators (ABC001 for ABC-001), leading zeros, the channel prefix WEB-, and
  an EAN only (a legacy number, the EAN in bpi_ean) each reach their Brightpearl product;
- a near miss is never used: the order waits on `syncctl review list` with the candidates and
  their scores; `syncctl review accept-sku` links the products, the order syncs, and the next
  order of that product matches by the link without review;
- a product Brightpearl lacks is UnknownSku, as before.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from shared.store import AuditResult
from tests.e2e.customers.test_operator_loop import cli
from tests.e2e.orders.conftest import TO_BP, OrderSandbox
from tests.e2e.sku_matching.conftest import Variations

__all__ = ["cli"]

pytestmark = pytest.mark.timeout(300)

MATCHED = ("exact", "mixed case", "separators", "leading zeros", "channel prefix", "EAN only")


def products_by_quantity(box: OrderSandbox, order: str) -> dict[int, Any]:
    """The Brightpearl order's rows: quantity -> product id."""
    rows = box.bp_order_of(order)["orderRows"].values()
    return {int(Decimal(r["quantity"]["magnitude"])): r["productId"] for r in rows}


def order_of(box: OrderSandbox, variations: Variations, *cases: str) -> str:
    """A submitted Dynamics order with a line per case, of quantity 1, 2, ... in that order."""
    return box.raise_order([(variations.sku(case), n) for n, case in enumerate(cases, start=1)])


def test_each_spelling_of_a_sku_reaches_its_brightpearl_product(
    orders_sandbox: OrderSandbox, variations: Variations
) -> None:
    box = orders_sandbox
    order = order_of(box, variations, *MATCHED)
    box.work()

    assert products_by_quantity(box, order) == {
        n: variations.brightpearl[case] for n, case in enumerate(MATCHED, start=1)
    }
    assert (AuditResult.SYNCED, None) in box.audited(order)
    assert box.dead_lettered() == []


def test_a_near_miss_waits_for_review_and_an_accepted_choice_is_remembered_as_a_link(
    orders_sandbox: OrderSandbox,
    variations: Variations,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    box = orders_sandbox
    lantern = variations.brightpearl["near miss"]
    dv_product = variations.dynamics["near miss"]
    order = order_of(box, variations, "exact", "near miss")
    box.work()

    assert box.bp_orders_of(order) == []  # a candidate is never used unreviewed
    assert box.dead_lettered() == []
    [item] = [i for i in json.loads(cli("review", "list", "--json")) if i["recordId"] == order]
    assert item["key"] == f"{TO_BP}/{order}" and item["reason"] == "SkuNeedsReview"
    text = item["description"]
    assert f"Dynamics product {dv_product.lower()} (SKU 'SKV-LANTRN-7')" in text
    assert f"Brightpearl product {lantern} (SKU 'SKV-LANTERN-7', SKU similarity 9" in text  # a score
    assert "syncctl review accept-sku" in text

    box.clock.advance(5)  # the audit orders a record's rows by time: the decision comes after the flag
    out = cli("review", "accept-sku", dv_product, str(lantern))
    assert f"Brightpearl product {lantern} (SKU 'SKV-LANTERN-7'): linked; 1 order(s)" in out
    box.work()

    link = box.store.links.get("product", "dataverse", dv_product.lower())
    assert link is not None and link.id_in("brightpearl") == str(lantern)
    assert products_by_quantity(box, order) == {1: variations.brightpearl["exact"], 2: lantern}
    assert [i for i in json.loads(cli("review", "list", "--json")) if i["recordId"] == order] == []

    again = order_of(box, variations, "near miss")  # the next order: by the link, no review
    box.work()
    assert products_by_quantity(box, again) == {1: lantern}
    results = [r for r, _ in box.audited(again)]
    assert AuditResult.SYNCED in results and AuditResult.NEEDS_REVIEW not in results


def test_a_product_brightpearl_lacks_is_unknown_sku(
    orders_sandbox: OrderSandbox, variations: Variations
) -> None:
    box = orders_sandbox
    order = order_of(box, variations, "exact", "unknown")
    box.work()

    assert box.bp_orders_of(order) == []
    [dead] = box.dead_lettered()
    assert dead.dead_letter_reason == "UnknownSku"
    assert "SKU 'NOPE-999' is not a Brightpearl product" in dead.dead_letter_error_description
    assert box.audited(order)[-1] == (AuditResult.DEAD_LETTERED, "UnknownSku")
