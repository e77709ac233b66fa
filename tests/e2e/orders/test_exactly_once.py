"""Exactly one Brightpearl sales order per Dynamics order through the running app (issue 13 item
2, "Acceptance"): under duplicate webhooks and notices, Brightpearl answers lost after it
committed the sales-order POST (its fault injection: `drop`, `timeout`), a host restart in the
middle of a batch of 30 orders, and all of them together. Each test counts the Brightpearl
orders per externalRef (the salesorder id) and looks for dead letters."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from sandbox.host import LocalHost
from shared.store import AuditResult
from tests.e2e.chaos.harness import DuplicatingProxy
from tests.e2e.customers.conftest import ROOT
from tests.e2e.orders.conftest import TO_BP, TO_DV, OrderSandbox, register_dataverse_webhooks

SALES_ORDER = "order-service/sales-order"  # the POST; not sales-order-search
ORDERS_POLLER = "poll_dataverse_orders"


@pytest.fixture
def sandbox_settings(sandbox_settings: dict[str, str]) -> dict[str, str]:
    """The orders sandbox with a short Brightpearl read timeout, so that a `timeout` fault (the
    simulator commits, then answers late) costs half a second of real time."""
    return {**sandbox_settings, "BRIGHTPEARL_READ_TIMEOUT_SECONDS": "0.5"}


@pytest.fixture(autouse=True)
def duplicates_not_refused(bp_server: Any) -> Iterator[None]:
    """Brightpearl as a private app meets it: with no installedIntegrationInstanceId, nothing
    documented makes externalRef unique, so a second POST would make a second order. The
    simulator then takes duplicates (its default refuses them, which would hide ours)."""
    bp_server.simulator.configure(duplicate_external_ref="unique-with-instance")
    try:
        yield
    finally:
        bp_server.simulator.configure(duplicate_external_ref="error")


# ------------------------------------------------------------------------------------- helpers
def assert_exactly_once(box: OrderSandbox, orders: list[str]) -> None:
    """One Brightpearl order per Dynamics order (by externalRef) and none besides; each linked,
    its id on the Dynamics order, audited synced; nothing dead-lettered."""
    per_order = {o: len(box.bp_orders_of(o)) for o in orders}
    assert {o: n for o, n in per_order.items() if n != 1} == {}, "Brightpearl orders per externalRef"
    assert len(box.bp_orders()) == len(orders), "Brightpearl orders of no Dynamics order"
    for order in orders:
        bp_id = str(box.bp_order_of(order)["id"])
        link = box.store.links.get("order", "dataverse", order.lower())
        assert link is not None and link.id_in("brightpearl") == bp_id, f"link of {order}"
        assert box.dv_order(order)["bpi_brightpearlid"] == bp_id
        assert (AuditResult.SYNCED, None) in box.audited(order)
    for flow in (TO_BP, TO_DV):  # the status events of the new orders come back too
        assert [
            (d.dead_letter_reason, d.dead_letter_error_description) for d in box.dead_lettered(flow)
        ] == []


def raise_orders_unannounced(box: OrderSandbox, count: int) -> list[str]:
    """Orders raised while every webhook delivery fails (the host down, a network fault)."""
    box.dv.call("POST", "webhooks/fail", {"count": 100_000})
    orders = raise_orders(box, count)
    box.dv.call("POST", "webhooks/drain", {"timeout": 20})
    box.dv.call("POST", "webhooks/fail", {"count": 0})
    return orders


def raise_orders(box: OrderSandbox, count: int) -> list[str]:
    lines = [[("MUG-1", 1 + i % 3), ("TEE-1", 1)] if i % 2 else [("CAP-1", 2)] for i in range(count)]
    return [box.raise_order(order_lines) for order_lines in lines]


def lost_sales_orders(box: OrderSandbox) -> int:
    """Sales-order POSTs the simulator committed while a fault kept the answer from the app."""
    with box.bp_sim._faults_lock:
        return sum(1 for lost in box.bp_sim.lost_answers if lost.path.strip("/") == SALES_ORDER)


def clear_faults(box: OrderSandbox) -> None:
    with box.bp_sim._faults_lock:
        box.bp_sim.faults.clear()


@contextmanager
def duplicated_webhooks(box: OrderSandbox) -> Iterator[DuplicatingProxy]:
    """The Dataverse webhook steps re-pointed at a proxy that posts every delivery twice."""
    proxy = DuplicatingProxy(box.host.base_url, rate=1.0, rng=random.Random(13))
    with proxy:
        register_dataverse_webhooks(box, f"http://127.0.0.1:{proxy.port}/api/webhooks/dataverse")
        yield proxy


@contextmanager
def second_host(box: OrderSandbox) -> Iterator[LocalHost]:
    """Another instance of the Function App beside the first, on the same bus and store: the
    two take messages of the same subscriptions at the same time."""
    other = LocalHost(
        "function_app",
        settings=box.values,
        bus=box.bus,
        port=0,
        clock=box.clock,
        project_root=ROOT,
        poll_interval=0.02,
    )
    with other:
        yield other


def work_both(box: OrderSandbox, other: LocalHost) -> None:
    for _ in range(3):
        box.work()
        other.wait_idle(timeout=90)
        if not box.active() and not box.scheduled():
            return


def wait_for_orders(box: OrderSandbox, at_least: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(box.bp_orders()) < at_least:
        assert time.monotonic() < deadline, f"fewer than {at_least} Brightpearl orders after {timeout} s"
        time.sleep(0.02)


def crash_mid_batch(box: OrderSandbox, *, after: int, committed: int) -> None:
    """Cut the running batch short once `after` orders exist in Brightpearl, as a host that dies
    would: from then on `committed` sales-order POSTs reach Brightpearl and the worker never hears
    back (it died after the create, before its link), the others never reach it (it died after
    claiming); the host stops with no grace, and once its worker has returned a new host starts
    on the same bus and store. Its claims are left to time out on the fake clock."""
    wait_for_orders(box, after)
    clear_faults(box)  # the first matching fault applies: these come before any other
    box.bp_sim.add_fault("drop", count=committed, path=SALES_ORDER, method="POST")
    box.bp_sim.add_fault("drop-before", count=1000, path=SALES_ORDER, method="POST")
    old = box.host
    old.stop(grace=0.0)
    deadline = time.monotonic() + 60
    while old._invoker.sync_running:  # the cut-short invocation returns (its POSTs fail fast)
        assert time.monotonic() < deadline, "the stopped host's worker did not return"
        time.sleep(0.02)
    clear_faults(box)
    box.start_host()


# --------------------------------------------------------------------------------------- tests
def test_duplicate_webhooks_and_notices_make_one_brightpearl_order_each(orders_sandbox: OrderSandbox) -> None:
    """Every webhook delivered twice, the orders' Update and their lines' notices taken by two
    instances of the app at once, and the change-tracking backstop naming the same orders again,
    before and after they were created: one order each."""
    box = orders_sandbox
    box.host.run_timer(ORDERS_POLLER)  # the first run records the delta links
    with duplicated_webhooks(box) as proxy, second_host(box) as other:
        orders = raise_orders(box, 8)
        box.host.run_timer(ORDERS_POLLER)  # the same orders and lines, by change tracking
        work_both(box, other)
        box.host.run_timer(ORDERS_POLLER)  # again, now that they are linked
        work_both(box, other)
    assert proxy.duplicates >= 8 * 3  # order Create, its line(s), the submit
    assert_exactly_once(box, orders)


def test_answers_lost_after_brightpearl_committed_the_order_make_no_second_order(
    orders_sandbox: OrderSandbox,
) -> None:
    """Sales-order POSTs Brightpearl commits while the app never hears back (a dropped connection,
    a read timeout): the retry finds the order by externalRef and links it."""
    box = orders_sandbox
    box.bp_sim.add_fault("drop", count=3, path=SALES_ORDER, method="POST")
    box.bp_sim.add_fault("timeout", count=3, seconds=1.5, path=SALES_ORDER, method="POST")
    orders = raise_orders(box, 8)
    box.work()
    assert lost_sales_orders(box) == 6
    assert_exactly_once(box, orders)


def test_a_host_restart_mid_batch_makes_each_order_once(orders_sandbox: OrderSandbox) -> None:
    """30 orders in one batch (raised while their webhooks were lost, found by change tracking);
    the host dies part way; a new host on the same bus and store takes the claims over once they
    time out: created ones are found by externalRef, the others created, each once."""
    box = orders_sandbox
    box.host.run_timer(ORDERS_POLLER)
    orders = raise_orders_unannounced(box, 30)
    box.bp_sim.add_fault("slow", count=30, seconds=0.15, path=SALES_ORDER, method="POST")
    box.host.run_timer(ORDERS_POLLER)  # one notice of the 30 orders (and one of their lines)
    crash_mid_batch(box, after=5, committed=3)
    assert lost_sales_orders(box) == 3
    assert 8 <= len(box.bp_orders()) < 30
    box.work()
    assert_exactly_once(box, orders)


def test_duplicates_lost_answers_and_a_restart_together_make_one_order_each(
    orders_sandbox: OrderSandbox,
) -> None:
    """All of it at once: duplicated webhooks and change-tracking notices, answers lost after
    commit, and the host dying mid-batch."""
    box = orders_sandbox
    box.host.run_timer(ORDERS_POLLER)
    box.bp_sim.add_fault("slow", count=1000, seconds=0.1, path=SALES_ORDER, method="POST")
    with duplicated_webhooks(box):
        batch = raise_orders_unannounced(box, 30)
        box.host.run_timer(ORDERS_POLLER)
        crash_mid_batch(box, after=5, committed=3)
        box.bp_sim.add_fault("drop", count=2, path=SALES_ORDER, method="POST")
        box.bp_sim.add_fault("timeout", count=2, seconds=1.5, path=SALES_ORDER, method="POST")
        later = raise_orders(box, 6)  # webhooks (twice each) reach the new host
        box.host.run_timer(ORDERS_POLLER)
        box.work()
    assert lost_sales_orders(box) == 7
    assert_exactly_once(box, batch + later)


def test_an_order_whose_id_write_back_failed_gets_it_and_no_second_order(
    orders_sandbox: OrderSandbox,
) -> None:
    """The order is created and linked, but writing bpi_brightpearlid back fails (Dataverse
    unavailable past the client's retries): the id reaches the Dynamics order later (a retry, or
    the order's next notice, here change tracking), and no second Brightpearl order is made."""
    box = orders_sandbox
    box.host.run_timer(ORDERS_POLLER)
    box.dv.call("POST", "faults", {"kind": "503", "count": 3, "path_contains": "$batch", "method": "POST"})
    order = box.raise_order([("TEE-1", 2)])
    box.work()
    box.host.run_timer(ORDERS_POLLER)
    box.work()
    assert box.dv.call("GET", "faults")["fired"].get("503") == 3
    assert_exactly_once(box, [order])
