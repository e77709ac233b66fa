"""Bad orders and faults through the sandbox (issue 13, "Bad input and faults"): an order with
no lines, a zero or negative quantity, or a currency Brightpearl lacks is dead-lettered alone,
with its reason and a description naming the fix, and never half-written (no Brightpearl
order); the good orders of the same round still sync. Brightpearl 503 and throttling and
Dataverse 429 are retried until the order is created, once."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.e2e.orders.conftest import OrderSandbox

pytestmark = pytest.mark.timeout(300)


def dead_letters_by_order(box: OrderSandbox) -> dict[str, tuple[str, str]]:
    """Order id -> (reason, description) of each orders-to-brightpearl dead letter (one id each)."""
    out: dict[str, tuple[str, str]] = {}
    for dead in box.dead_lettered():
        [record] = json.loads(dead.body)["data"]["ids"]
        assert record.lower() not in out, f"order {record} dead-lettered twice"
        out[record.lower()] = (dead.dead_letter_reason, dead.dead_letter_error_description)
    return out


def fired_429(box: OrderSandbox) -> int:
    """Dataverse 429 faults fired so far (the simulator is shared by the session's tests)."""
    return int(box.dv.call("GET", "faults")["fired"].get("429", 0))


def add_currency(box: OrderSandbox, iso: str, name: str, symbol: str) -> str:
    """A Dynamics transactioncurrency (Brightpearl's account has GBP, EUR and USD only)."""
    return box.dvc.create(
        "transactioncurrencies",
        {
            "isocurrencycode": iso,
            "currencyname": name,
            "currencysymbol": symbol,
            "currencyprecision": 2,
            "exchangerate": 1.1,
        },
    )


def test_bad_orders_are_dead_lettered_alone_and_the_good_ones_sync(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    francs = add_currency(box, "CHF", "Swiss Franc", "Fr.")
    good_before = box.raise_order([("MUG-1", 1)])
    no_lines = box.raise_order([])
    zero = box.raise_order([("MUG-1", 2), ("TEE-1", 0)])
    negative = box.raise_order([("CAP-1", -1)])
    in_francs = box.raise_order(
        [],
        write_ins=[("Consulting", Decimal("100.00"), 1)],
        **{"transactioncurrencyid@odata.bind": f"/transactioncurrencies({francs})"},
    )
    odd_tax = box.raise_order([], submit=False)
    box.add_line(odd_tax, "TEE-1", 1, tax=3.50)  # 17.5% of 20.00: a rate tax.codes lacks
    box.submit(odd_tax)
    good_after = box.raise_order([("TEE-1", 2), ("CAP-1", 1)])
    box.work()

    for good in (good_before, good_after):
        assert len(box.bp_orders_of(good)) == 1
    dead = dead_letters_by_order(box)
    assert set(dead) == {no_lines, zero, negative, in_francs, odd_tax}
    for bad in dead:
        assert box.bp_orders_of(bad) == [], "a bad order must not be half-written"
        assert not box.dv_order(bad).get("bpi_brightpearlid")

    number = {o: box.dv_order(o)["ordernumber"] for o in dead}
    reason, description = dead[no_lines]
    assert reason == "OrderHasNoLines"
    assert number[no_lines] in description and "add" in description.lower()
    reason, description = dead[zero]
    assert reason == "InvalidQuantity"
    assert number[zero] in description and "SKU 'TEE-1'" in description and "is 0" in description
    assert "correct the quantity" in description.lower()
    reason, description = dead[negative]
    assert reason == "InvalidQuantity" and "is -1" in description
    reason, description = dead[in_francs]
    assert reason == "CurrencyMissing"
    assert number[in_francs] in description and "CHF" in description
    assert "add the currency in brightpearl" in description.lower()
    reason, description = dead[odd_tax]
    assert reason == "UnmappableValue"
    assert number[odd_tax] in description and "lines[0].tax" in description and "17.50%" in description
    assert "add the rate (or tax.default) to" in description
    assert len(box.bp_orders()) == 2


@pytest.mark.parametrize("fault", ["503", "throttle"])
def test_brightpearl_unavailable_or_throttled_is_retried_until_the_order_is_created_once(
    orders_sandbox: OrderSandbox, fault: str
) -> None:
    """More refusals than the client's own retries (BRIGHTPEARL_MAX_RETRIES 2): the message is
    retried from the bus (the fake clock moves) and the order is created once."""
    box = orders_sandbox
    box.bp_sim.add_fault(fault, count=4, path="order-service/sales-order", method="POST")
    order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
    box.work()

    assert len(box.bp_orders_of(order)) == 1
    assert len(box.bp_orders()) == 1
    assert box.dv_order(order)["bpi_brightpearlid"] == str(box.bp_order_of(order)["id"])
    assert box.dead_lettered() == []
    with box.bp_sim._faults_lock:
        assert all(f.remaining == 0 for f in box.bp_sim.faults), "the faults were not all met"


def test_dataverse_throttling_is_retried_until_the_order_is_created_once(
    orders_sandbox: OrderSandbox,
) -> None:
    """Dataverse answers 429 to the flow's reads and write-back (more than the client's own
    retries): retried, and the order is created once with its id written back."""
    box = orders_sandbox
    order = box.raise_order([("CAP-1", 2)])
    before = fired_429(box)
    box.dv.call(
        "POST", "faults", {"kind": "429", "count": 6, "retry_after": 0.01, "path_contains": "salesorder"}
    )
    box.work()

    assert len(box.bp_orders_of(order)) == 1
    assert box.dv_order(order)["bpi_brightpearlid"] == str(box.bp_order_of(order)["id"])
    assert box.dead_lettered() == []
    assert fired_429(box) - before == 6


def test_a_throttled_id_write_back_still_brings_the_brightpearl_id_to_dynamics(
    orders_sandbox: OrderSandbox,
) -> None:
    """Dataverse refuses the bpi_brightpearlid write-back (429, more than the client's retries)
    after Brightpearl created the order: still one order, and its id reaches Dynamics."""
    box = orders_sandbox
    order = box.raise_order([("MUG-1", 1)])
    before = fired_429(box)
    box.dv.call(
        "POST",
        "faults",
        {"kind": "429", "count": 3, "retry_after": 0.01, "path_contains": "$batch", "method": "POST"},
    )
    box.work()

    assert fired_429(box) - before == 3
    created = box.bp_order_of(order)
    assert box.dv_order(order)["bpi_brightpearlid"] == str(created["id"])
    assert len(box.bp_orders()) == 1 and box.dead_lettered() == []
