"""Fulfilment is off by default (the shipped mappings/orders.yaml reserves and notes nothing, and
makes no Brightpearl call for it), other triggers and channels behave as configured, and a bad
`fulfilment:` section is refused naming the field and the problem (`syncctl mapping check`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.mapping.config import MappingError
from shared.mapping.orders_config import parse_order_mapping
from syncctl.main import app
from tests.e2e.fulfilment.conftest import OFF, ON, WAREHOUSES, FulfilmentSandbox

FULFILMENT_ROUTES = (  # the simulator counts requests by route
    "POST warehouse-service/order/{id}/reservation/warehouse/{warehouse}",
    "GET warehouse-service/order/{id}/reservation",
    "POST warehouse-service/order/{id}/goods-note/goods-out",
)


def fulfilment_calls(box: FulfilmentSandbox) -> int:
    with box.bp_sim._faults_lock:
        return sum(box.bp_sim.requests.get(route, 0) for route in FULFILMENT_ROUTES)


class TestOffByDefault:
    @pytest.fixture
    def mapping_edits(self) -> tuple[tuple[str, str], ...]:
        return ()  # the shipped file as it is

    def test_the_shipped_mapping_reserves_and_notes_nothing(self, box: FulfilmentSandbox) -> None:
        box.add_stock("MUG-1", 5)
        box.add_stock("TEE-1", 5)
        order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
        box.work()
        bp_order = box.bp_order_of(order)["id"]
        box.set_status(bp_order)
        box.work()
        assert box.notes(bp_order) == [] and box.reserved(bp_order) == 0
        assert fulfilment_calls(box) == 0
        assert box.flow_audit(bp_order) == []  # not even a skip: the flow completes its notices unread
        assert box.line_figures(order) == {"MUG-1": (None, None), "TEE-1": (None, None)}


class TestPaidTriggerOnOneChannel:
    @pytest.fixture
    def mapping_edits(self) -> tuple[tuple[str, str], ...]:
        return (
            (OFF, ON),
            ("    when: status\n    statuses: [Ready to ship]", "    when: paid"),
            ("  channels: []  ", "  channels: [1]  "),
            WAREHOUSES,
        )

    def test_an_order_is_noted_once_paid_in_full(self, box: FulfilmentSandbox) -> None:
        box.add_stock("MUG-1", 5)
        order = box.raise_order([("MUG-1", 1)])
        box.work()
        created = box.bp_order_of(order)
        bp_order = created["id"]
        box.set_status(bp_order)  # a status is no trigger here
        box.work()
        assert box.notes(bp_order) == []
        assert ("skipped", "FulfilmentNotTriggered") in box.flow_audit(bp_order)
        with box.bp_sim.state.lock:
            total = created["totalValue"]["total"]
        payment = {
            "transactionRef": f"pay-{bp_order}",
            "transactionCode": f"pay-{bp_order}",
            "paymentMethodCode": "CARD",
            "paymentType": "RECEIPT",
            "orderId": bp_order,
            "currencyIsoCode": "GBP",
            "exchangeRate": "1.0",
            "amountPaid": total,
            "paymentDate": "2026-12-05T10:00:00Z",
            "journalRef": "Paid in full",
        }
        box.bp.request("POST", "/accounting-service/customer-payment", json=payment)
        box.host.run_timer("poll_brightpearl_orders")  # payments raise no webhook: the order poller
        box.work()
        assert box.note_shape(bp_order) == [(2, {"MUG-1": 1})]
        with box.bp_sim._faults_lock:
            writes = [box.bp_sim.requests.get(r, 0) for r in FULFILMENT_ROUTES if r.startswith("POST")]
        assert writes == [1, 1]  # one reservation, one goods-out note: the counter the test above reads


class TestImmediately:
    @pytest.fixture
    def mapping_edits(self) -> tuple[tuple[str, str], ...]:
        return ((OFF, ON), ("    when: status\n    statuses: [Ready to ship]", "    when: immediately"))

    def test_a_new_order_is_noted_as_soon_as_brightpearl_has_it(self, box: FulfilmentSandbox) -> None:
        box.add_stock("MUG-1", 5)
        box.add_stock("TEE-1", 1)
        order = box.raise_order([("MUG-1", 2), ("TEE-1", 1)])
        box.work()  # sales-order.created brings it; no status change needed
        bp_order = box.bp_order_of(order)["id"]
        assert box.note_shape(bp_order) == [(2, {"MUG-1": 2, "TEE-1": 1})]  # the order's own warehouse
        assert box.line_figures(order) == {"MUG-1": (2, 2), "TEE-1": (1, 1)}


class TestOtherWarehousesOnly:
    @pytest.fixture
    def mapping_edits(self) -> tuple[tuple[str, str], ...]:
        return ((OFF, ON), ("  order_warehouses: []  ", "  order_warehouses: [3]  "))

    def test_an_order_of_another_warehouse_is_left_alone(self, box: FulfilmentSandbox) -> None:
        box.add_stock("MUG-1", 5)
        order = box.raise_order([("MUG-1", 1)])
        box.work()
        bp_order = box.bp_order_of(order)["id"]  # the account's default warehouse: 2
        box.set_status(bp_order)
        box.work()
        assert box.notes(bp_order) == [] and box.reserved(bp_order) == 0
        assert ("skipped", "WarehouseNotFulfilled") in box.flow_audit(bp_order)


def test_a_bad_fulfilment_section_is_refused_naming_the_fields(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[3] / "mappings" / "orders.yaml").read_text()
    bad = text.replace(OFF, ON).replace("statuses: [Ready to ship]", "statuses: []")
    bad = bad.replace("  warehouses: []  ", "  warehouses: [2, 2]  ")
    (tmp_path / "orders.yaml").write_text(bad)
    (tmp_path / "order_status.yaml").write_text(
        (Path(__file__).resolve().parents[3] / "mappings" / "order_status.yaml").read_text()
    )
    result = CliRunner().invoke(
        app, ["mapping", "check", str(tmp_path / "orders.yaml"), "--entity", "fulfilment"]
    )
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "trigger.statuses: when is status, so name at least one Brightpearl status" in out
    assert "warehouses: warehouse 2 is listed more than once" in out


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            {"trigger": {"when": "soon"}},
            "fulfilment.trigger.when: Input should be 'status', 'paid' or 'immediately'",
        ),
        ({"channels": [0]}, "fulfilment.channels[0]: Input should be greater than or equal to 1"),
        ({"channel_warehouses": {3: []}}, "channel_warehouses.3: name at least one warehouse id"),
        (
            {"channels": [1], "channel_warehouses": {3: [2]}},
            "channel_warehouses.3: channel 3 is not in channels (1), so its orders are never fulfilled",
        ),
        ({"enabled": "sometimes"}, "fulfilment.enabled: Input should be a valid boolean"),
        ({"warehouse": [2]}, "fulfilment.warehouse: Extra inputs are not permitted"),
        ({"order_warehouses": [3, 3]}, "order_warehouses: warehouse 3 is listed more than once"),
    ],
)
def test_each_bad_setting_names_its_field(section: dict[str, object], problem: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_order_mapping({"fulfilment": section}, "orders.yaml")
    assert problem in str(caught.value)
