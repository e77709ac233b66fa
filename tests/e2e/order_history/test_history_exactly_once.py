"""One Dynamics order per Brightpearl order (issue 14 "Bad input and faults": nothing is created
twice under duplicate events and a host restart): duplicated sales-order.created webhooks, the
order-search poller and a backfill naming the same orders, two instances of the app at once, a
host restart; a worker that died after creating the Dynamics order and before linking it (the
next one finds it by bpi_brightpearlid). Also `syncctl backfill orders --from brightpearl --since`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.e2e.order_history.conftest import dv_orders_of, history_audit, lines_of, place_web_order
from tests.e2e.orders.conftest import TO_BP, TO_DV, OrderSandbox
from tests.e2e.orders.test_exactly_once import second_host, work_both

BP_ORDER_POLLER = "poll_brightpearl_orders"


@pytest.fixture
def sandbox_settings(sandbox_settings: dict[str, str]) -> dict[str, str]:
    """The Brightpearl order poller runs only when a test runs it."""
    return {
        **sandbox_settings,
        "BRIGHTPEARL_ORDER_POLL_SCHEDULE": "0 0 0 1 1 *",
    }


def assert_one_dynamics_order_each(box: OrderSandbox, orders: list[int]) -> None:
    """One Dynamics order per Brightpearl order, linked, with its lines; no other copy; nothing
    dead-lettered; no Brightpearl order made from them."""
    for bp_id in orders:
        copies = dv_orders_of(box, bp_id)
        assert len(copies) == 1, f"Dynamics orders of Brightpearl order {bp_id}: {len(copies)}"
        link = box.store.links.get("order", "brightpearl", str(bp_id))
        assert link is not None and link.id_in("dataverse") == copies[0]["salesorderid"]
        assert len(lines_of(box, copies[0]["salesorderid"])) == len(
            box.bp_sim.state.orders[bp_id]["orderRows"]
        )
        assert (copies[0]["statecode"], copies[0]["statuscode"]) == (1, 3)
    assert len(box.bp_orders()) == len(orders)
    for flow in (TO_BP, TO_DV):
        assert [
            (d.dead_letter_reason, d.dead_letter_error_description) for d in box.dead_lettered(flow)
        ] == []


def backfill(box: OrderSandbox, tmp_path: Path, *args: str) -> str:
    from syncctl.main import app

    settings = tmp_path / "backfill.settings.json"
    settings.write_text(json.dumps({"Values": box.values}))
    result = CliRunner().invoke(
        app, ["backfill", "orders", *args, "--settings", str(settings)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_duplicates_a_restart_and_two_hosts_make_one_dynamics_order_each(
    orders_sandbox: OrderSandbox, tmp_path: Path
) -> None:
    box = orders_sandbox
    box.bp_sim.set_webhook_faults(duplicate=1000)  # every sales-order.created delivered twice
    box.host.run_timer(BP_ORDER_POLLER)  # the poller's first run: its watermark
    box.host.stop()  # what follows reaches a host that is down: its webhooks are lost
    early = [place_web_order(box, [("MUG-1", 1 + i)], ref=f"WEB-3{i}") for i in range(3)]
    box.start_host()
    with second_host(box) as other:
        later = [place_web_order(box, [("TEE-1", 1), ("CAP-1", i + 1)], ref=f"WEB-4{i}") for i in range(4)]
        box.host.run_timer(BP_ORDER_POLLER)  # every order again, the lost ones too
        backfill(box, tmp_path, "--from", "brightpearl")  # and again
        work_both(box, other)
        box.host.run_timer(BP_ORDER_POLLER)  # once more, now that they are linked
        work_both(box, other)
    box.bp_sim.set_webhook_faults(duplicate=0)
    assert_one_dynamics_order_each(box, early + later)


def left_by_a_dead_worker(box: OrderSandbox, bp_id: int) -> str:
    """The Dynamics order a worker created for `bp_id` before it died (no link written): what
    the order history's POST would have made, with its bpi_brightpearlid."""
    customer = box.shop.customer
    body = {
        "name": f"Brightpearl order {bp_id}",
        "bpi_brightpearlid": str(bp_id),
        "bpi_origin": "Brightpearl",
        "customerid_contact@odata.bind": f"/contacts({customer})",
        "pricelevelid@odata.bind": f"/pricelevels({box.shop.refs.price_lists['Retail GBP']})",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({box.shop.refs.currencies['GBP']})",
        "order_details": [  # one POST made the order with its lines (deep insert)
            {"isproductoverridden": True, "productdescription": "Its row", "priceperunit": 8.0, "quantity": 2}
        ],
    }
    return box.dvc.create("salesorders", body).lower()


def test_an_order_created_by_a_worker_that_died_before_linking_it_is_found_not_made_again(
    orders_sandbox: OrderSandbox,
) -> None:
    """The worker claimed the order, marked its POST as sent, created the Dynamics order and died:
    once its claim's lease runs out the next worker takes it over, finds the order by
    bpi_brightpearlid and links it."""
    box = orders_sandbox
    bp_id = place_web_order(box, [("CAP-1", 2)], ref="WEB-601", announce=False)
    claim = box.store.links.claim("order", "brightpearl", str(bp_id), "dataverse")
    box.store.links.save_progress(claim, {"posting": True})
    made = left_by_a_dead_worker(box, bp_id)
    box.bp_sim.state.emit("sales-order.created", [bp_id])
    box.work()

    assert [o["salesorderid"] for o in dv_orders_of(box, bp_id)] == [made]
    link = box.store.links.get("order", "brightpearl", str(bp_id))
    assert link is not None and link.is_linked and link.id_in("dataverse") == made
    notes = [description for result, _, description in history_audit(box, bp_id) if result == "synced"]
    assert any("recovered after an interrupted create" in n for n in notes), notes
    assert box.dead_lettered(TO_DV) == []


def test_a_dynamics_order_already_holding_the_id_is_linked_not_duplicated(
    orders_sandbox: OrderSandbox,
) -> None:
    """No claim is left (the store lost it), only the Dynamics order: the POST is refused by the
    alternate key on bpi_brightpearlid, and the order it names is linked."""
    box = orders_sandbox
    bp_id = place_web_order(box, [("MUG-1", 1)], ref="WEB-602", announce=False)
    made = left_by_a_dead_worker(box, bp_id)
    box.bp_sim.state.emit("sales-order.created", [bp_id])
    box.work()

    assert [o["salesorderid"] for o in dv_orders_of(box, bp_id)] == [made]
    link = box.store.links.get("order", "brightpearl", str(bp_id))
    assert link is not None and link.id_in("dataverse") == made
    assert (dv_orders_of(box, bp_id)[0]["statecode"], dv_orders_of(box, bp_id)[0]["statuscode"]) == (1, 3)
    assert box.dead_lettered(TO_DV) == []


def test_backfill_from_brightpearl_since_a_date_copies_the_orders_updated_since(
    orders_sandbox: OrderSandbox, tmp_path: Path
) -> None:
    box = orders_sandbox
    old = place_web_order(box, [("MUG-1", 1)], ref="WEB-OLD", announce=False)
    recent = [place_web_order(box, [("TEE-1", 2)], ref=f"WEB-NEW{i}", announce=False) for i in range(2)]
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    with box.bp_sim.state.lock:
        box.bp_sim.state.orders[old].update(createdOn=three_days_ago, updatedOn=three_days_ago)
    box.work()
    assert [o for o in [old, *recent] if dv_orders_of(box, o)] == []  # nothing announced them

    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    said = backfill(box, tmp_path, "--from", "brightpearl", "--since", since)
    assert "backfill orders from brightpearl" in said
    assert "published 2 order ids in 1 notices to brightpearl-changes" in said
    box.work()

    for bp_id in recent:
        assert len(dv_orders_of(box, bp_id)) == 1
    assert dv_orders_of(box, old) == []
    backfill(box, tmp_path, "--from", "brightpearl", "--since", since)  # again: nothing new
    box.work()
    assert [len(dv_orders_of(box, o)) for o in recent] == [1, 1]
    assert box.dead_lettered(TO_DV) == []
