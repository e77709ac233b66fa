"""Timeline (issue 14 item 7): an order placed, shipped with tracking, returned and refunded in
Brightpearl appears on the Dynamics customer's timeline, as notes (annotation, objectid) and a
task (regardingobjectid), once per moment however often it is announced, after a restart that
lost the link, and only once the customer is in Dynamics. Kinds switched off in
mappings/timeline.yaml are not written."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.brightpearl.orders_admin import handle_orders_admin
from sandbox.demo import shop_address, shop_contact
from shared.events import ChangeNotice, Envelope
from shared.flows.timeline_to_dataverse import activity_id
from shared.ops import flow_control
from shared.store import AuditResult
from tests.e2e.customers.conftest import BP_TOPIC, ROOT
from tests.e2e.orders.conftest import OrderSandbox, _lookup_id, order_mapping
from tests.e2e.products.conftest import product_mapping

TL = "timeline-to-dataverse"
CUSTOMERS = "customers-to-dataverse"


@pytest.fixture
def timeline_edits() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def sandbox_settings(tmp_path: Path, timeline_edits: list[tuple[str, str]]) -> dict[str, str]:
    text = (ROOT / "mappings" / "timeline.yaml").read_text()
    for old, new in timeline_edits:
        assert old in text, f"mappings/timeline.yaml changed: {old!r} not found"
        text = text.replace(old, new)
    path = tmp_path / "timeline.yaml"
    path.write_text(text)
    never = "0 0 0 1 1 *"  # timers run only when a test runs them
    schedules = [
        "ORDERS_DATAVERSE_POLL_SCHEDULE",
        "BRIGHTPEARL_ORDER_POLL_SCHEDULE",
        "BRIGHTPEARL_PAYMENT_POLL_SCHEDULE",
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE",
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE",
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE",
        "RETURNS_POLL_SCHEDULE",
    ]
    return {
        "ORDER_MAPPING_PATH": str(order_mapping(tmp_path)),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "TIMELINE_MAPPING_PATH": str(path),
        **{s: never for s in schedules},
    }


# -- driving ---------------------------------------------------------------------------------------
def announce(box: OrderSandbox, entity: str, record_id: int, *, work: bool = True) -> None:
    """A Brightpearl notice as the webhooks or pollers publish it."""
    notice = ChangeNotice(
        system="brightpearl",
        entity=entity,
        ids=(str(record_id),),
        operation="updated",  # type: ignore[arg-type]
        observed_at=datetime.now(UTC),
        source="/brightpearl/sandbox",
        version=uuid.uuid4().hex,
    )
    box.bus.publish(BP_TOPIC, [Envelope.wrap(notice).to_message()])
    if work:
        settle(box)


def settle(box: OrderSandbox, rounds: int = 10) -> None:
    """Deliver webhooks and work off the timeline subscription, retries included."""
    for _ in range(rounds):
        deadline = time.monotonic() + 60
        while not box.bp_sim.dispatcher.idle():
            assert time.monotonic() < deadline, "Brightpearl webhooks still undelivered"
            time.sleep(0.02)
        box.host.wait_idle(timeout=90)
        if not box.bus.counts(BP_TOPIC, TL).scheduled:
            return
        box.clock.advance(61)
    box.host.wait_idle(timeout=90)


def admin(box: OrderSandbox, path: str, body: dict[str, Any]) -> Any:
    answer = handle_orders_admin(box.bp_sim, "POST", path.strip("/").split("/"), body)
    assert answer is not None and answer[0] == 200, answer
    return answer[1]


def body(box: OrderSandbox, customer: int | None, ref: str, row: dict[str, Any]) -> dict[str, Any]:
    """A sales order or credit POST body in GBP: one row taxed at T20."""
    tax = {"taxCode": "T20"}
    return {
        "customer": {"id": customer or box.shop.bp_customer},
        "ref": ref,
        "currency": {"code": "GBP"},
        "rows": [{**row, **tax}],
    }


def web_order(box: OrderSandbox, customer: int | None = None, ref: str = "WEB-2001") -> int:
    mugs = {"productId": box.shop.bp_products["MUG-1"], "quantity": 2, "net": "25.00", "tax": "5.00"}
    return box.bp.create_sales_order(body(box, customer, ref, mugs))


def ship(box: OrderSandbox, order: int, tracking: str) -> int:
    [note] = admin(box, f"orders/{order}/goods-out", {})["goodsOutNoteIds"]
    admin(box, f"goods-out/{note}/ship", {"reference": tracking, "shippingMethodId": 2})
    return int(note)


def credit(box: OrderSandbox, order: int, ref: str = "RMA-1") -> int:
    returned = {"name": "Returned mug", "quantity": 1, "net": "12.50", "tax": "2.50"}
    return box.bp.create_sales_credit({**body(box, None, ref, returned), "parentId": order})


# -- looking ---------------------------------------------------------------------------------------
def notes(box: OrderSandbox, contact: str) -> list[dict[str, Any]]:
    return [r for r in box.dv.rows("annotation") if _lookup_id(r.get("objectid")).lower() == contact.lower()]


def tasks(box: OrderSandbox, contact: str) -> list[dict[str, Any]]:
    return [
        r for r in box.dv.rows("task") if _lookup_id(r.get("regardingobjectid")).lower() == contact.lower()
    ]


def subjects(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(r["subject"] for r in rows)


def audited(box: OrderSandbox, key: str) -> list[tuple[AuditResult, str | None]]:
    entries = box.store.audit.for_record("timeline", "brightpearl", key)
    return sorted((e.result, e.reason_code) for e in entries if e.flow == TL)


# -- tests -----------------------------------------------------------------------------------------
def test_order_shipment_return_and_refund_reach_the_customer_timeline_once_each(orders_sandbox: OrderSandbox):
    box = orders_sandbox
    contact = box.shop.customer
    order = web_order(box)
    announce(box, "order", order)
    assert subjects(notes(box, contact)) == ["Order WEB-2001 placed"]
    [placed] = notes(box, contact)
    assert placed["annotationid"] == activity_id(f"order_placed:{order}")
    assert "Total 30.00 GBP" in placed["notetext"] and "2 x MUG-1" in placed["notetext"]

    note = ship(box, order, "TRACK-123")
    announce(box, "goods-out-note", note)
    shipped = [r for r in notes(box, contact) if "shipped" in r["subject"]]
    assert [r["subject"] for r in shipped] == ["Order WEB-2001 shipped TRACK-123"]
    assert "Tracking reference: TRACK-123" in shipped[0]["notetext"]

    returned = credit(box, order)
    announce(box, "sales-credit", returned)
    [task] = tasks(box, contact)
    assert task["subject"] == "Return RMA-1 for order WEB-2001"
    assert task["activityid"] == activity_id(f"returned:{returned}")
    assert "Returned mug" in task["description"] and task.get("scheduledend")

    admin(box, f"orders/{returned}/pay", {"paymentType": "PAYMENT"})
    announce(box, "order", returned)  # as the payment poller announces a paid order
    assert "Refund 15.00 GBP for return RMA-1" in subjects(notes(box, contact))

    # every notice again (a redelivery, the poller, a second webhook): nothing new anywhere
    before = (len(notes(box, contact)), len(tasks(box, contact)))
    for entity, record in (("order", order), ("goods-out-note", note), ("sales-credit", returned)):
        announce(box, entity, record)
    assert (len(notes(box, contact)), len(tasks(box, contact))) == before == (3, 1)
    assert (AuditResult.SYNCED, None) in audited(box, f"order_placed:{order}")
    assert box.dead_letters(BP_TOPIC, TL) == []


def test_a_moment_written_before_a_lost_link_is_not_written_twice(orders_sandbox: OrderSandbox):
    """A host that wrote the note and stopped before recording the link: the next notice's write
    is refused by Dynamics (412 DuplicateRecord on the moment's id) and counts as done."""
    box = orders_sandbox
    contact = box.shop.customer
    order = web_order(box, ref="WEB-LOST")
    key = f"order_placed:{order}"
    box.dvc.upsert(  # what the stopped host wrote: the note, with the moment's id, no link
        "annotations",
        activity_id(key),
        {"subject": "Order WEB-LOST placed", "objectid_contact@odata.bind": f"/contacts({contact})"},
    )
    announce(box, "order", order)
    assert subjects(notes(box, contact)) == ["Order WEB-LOST placed"]
    assert (AuditResult.SKIPPED, None) in audited(box, key)  # "already on the timeline"
    link = box.store.links.get("timeline", "brightpearl", key)
    assert link is not None and link.id_in("dataverse") == activity_id(key)
    assert box.dead_letters(BP_TOPIC, TL) == []


def test_a_customer_not_in_dynamics_yet_waits_then_gets_the_moment(
    orders_sandbox: OrderSandbox, monkeypatch: pytest.MonkeyPatch
):
    box = orders_sandbox
    state = box.bp_sim.state
    with state.lock:
        address = state.create_address(shop_address("2 Quay St", "Bristol", "BS1 4DJ"))
        newcomer = int(state.create_contact(shop_contact("Nia", "New", "nia.new@example.org", None, address)))
    # the customers flow is held until the timeline has looked once: order history sees the same
    # order and asks it for the contact at once, which could otherwise win the race
    monkeypatch.setattr(flow_control, "CACHE_SECONDS", 0.0)
    flow_control.pause(box.store.cursors, CUSTOMERS, now=datetime.now(UTC), by="test")
    try:
        order = web_order(box, customer=newcomer, ref="WEB-NEW")
        announce(box, "order", order, work=False)
        box.host.wait_idle(timeout=60)
        assert box.bus.counts(BP_TOPIC, TL).scheduled >= 1  # CustomerNotSynced: retried later
        assert not [r for r in box.dv.rows("annotation") if r.get("subject") == "Order WEB-NEW placed"]
    finally:
        flow_control.resume(box.store.cursors, CUSTOMERS)
        flow_control.PAUSES.forget()

    # the customers flow brings the contact; the retried notice then writes the moment
    box.poll_brightpearl()
    box.host.wait_idle(timeout=90)
    link = box.store.links.get("customer", "brightpearl", str(newcomer))
    assert link is not None and link.is_linked
    settle(box)
    contact = str(link.id_in("dataverse"))
    assert subjects(notes(box, contact)) == ["Order WEB-NEW placed"]
    assert box.dead_letters(BP_TOPIC, TL) == []


@pytest.mark.parametrize(
    "timeline_edits",
    [
        [
            (
                "  order_placed:               # a Brightpearl sales order, from any channel\n"
                "    enabled: true",
                "  order_placed:\n    enabled: false",
            )
        ]
    ],
)
def test_a_kind_switched_off_is_not_written(orders_sandbox: OrderSandbox):
    box = orders_sandbox
    contact = box.shop.customer
    order = web_order(box, ref="WEB-OFF")
    note = ship(box, order, "TRACK-OFF")
    announce(box, "order", order)
    announce(box, "goods-out-note", note)
    assert subjects(notes(box, contact)) == ["Order WEB-OFF shipped TRACK-OFF"]


def test_a_new_web_order_reaches_the_timeline_by_its_created_webhook(orders_sandbox: OrderSandbox):
    """No poller, no hand-made notice: Brightpearl's sales-order.created webhook alone."""
    box = orders_sandbox
    web_order(box, ref="WEB-HOOK")
    settle(box)
    assert "Order WEB-HOOK placed" in subjects(notes(box, box.shop.customer))
