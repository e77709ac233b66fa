"""Anomaly detection (issue 16 item 3) through the real flows on the fakes, and on the state store
in Azurite: each kind is flagged on seeded data (order value, stock to zero, stock out of step,
dead-letter and deletion spikes, e-mail churn), flags reach the audit (flow `anomalies`) and App
Insights as custom events without personal data, and never block a sync unless configured to
hold the record for review."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.anomaly.flags import AUDIT_FLOW, EVENT
from shared.anomaly.state import read, update, values_of
from shared.anomaly.stats import judge
from shared.events import Envelope
from shared.flows.stock_to_dataverse import StockToDataverse
from shared.mapping.stock import StockSettings
from shared.outcomes import Completed, DeadLetter
from shared.store import AuditResult, StateStore
from shared.sync.fakes import FakeBrightpearl, FakeDataverse
from shared.telemetry import CUSTOM_EVENT_NAME
from tests.unit.engine.test_engine_decisions import Rig as CustomerRig
from tests.unit.engine.test_engine_decisions import notice as customer_notice
from tests.unit.flows.orders.test_orders_to_brightpearl import CONTACT, ORDER
from tests.unit.flows.orders.test_orders_to_brightpearl import Rig as OrderRig
from tests.unit.flows.orders.test_orders_to_brightpearl import notice as order_notice


def flags(store: Any) -> list[tuple[str, str, str]]:
    """(reason, flow named in the description, record) of every anomaly row in the audit."""
    entries = store.audit.entries if hasattr(store.audit, "entries") else store.audit.recent(AUDIT_FLOW, 100)
    return [
        (e.reason_code, e.description.split(":")[0], e.source_id)
        for e in entries
        if e.flow == AUDIT_FLOW and e.result is AuditResult.ANOMALY
    ]


# ------------------------------------------------------------------------------ robust statistics
def test_the_median_and_mad_ignore_a_few_extreme_values_in_the_history() -> None:
    history = [20.0, 21, 22, 23, 24, 25, 5000]  # one earlier outlier does not widen the range
    assert judge(26, history, 6).outlier is False
    assert judge(400, history, 6).outlier is True
    assert judge(10, [10, 10, 10, 10], 6).outlier is False  # MAD 0: an equal value is no outlier


# ------------------------------------------------------------------------------ order value
def order_rig(*, customer_history: list[float] = (), account_history: list[float] = ()) -> OrderRig:
    rig = OrderRig()
    values = values_of(rig.store)
    if customer_history:
        update(values, f"orders|customer|contact|{CONTACT}|GBP", lambda _: list(customer_history))
    if account_history:
        update(values, "orders|account|GBP", lambda _: list(account_history))
    return rig


def big_order(rig: OrderRig, price: float) -> None:
    rig.order()
    rig.line(
        "01000000-0000-4000-8000-000000000001",
        _productid_value="0b000000-0000-4000-8000-000000000001",
        quantity=2,
        priceperunit=price,
        tax=0,
        sequencenumber=1,
    )


def test_an_order_far_above_the_customers_history_is_flagged_and_still_created() -> None:
    rig = order_rig(customer_history=[20, 22, 24, 25, 23, 21])
    big_order(rig, 10_000)  # 20,003 against a median of about 22

    assert rig.flow().handle([order_notice(ORDER)]) == [Completed()]

    assert len(rig.orders) == 1  # a flag never blocks the sync
    assert flags(rig.store) == [("AnomalyOrderValue", "orders-to-brightpearl", ORDER)]
    [row] = [e for e in rig.store.audit.entries if e.flow == AUDIT_FLOW]
    assert "the customer's median 22.5 over 6 earlier orders" in row.description
    assert "Ada" not in row.description and "Secret" not in row.description
    assert read(values_of(rig.store), f"orders|customer|contact|{CONTACT}|GBP")[-1] == 20_003


def test_an_order_in_the_customers_range_raises_no_flag_and_joins_both_histories() -> None:
    rig = order_rig(customer_history=[20, 22, 24, 25, 23, 21])
    big_order(rig, 10)  # 23

    assert rig.flow().handle([order_notice(ORDER)]) == [Completed()]

    assert flags(rig.store) == []
    assert read(values_of(rig.store), "orders|account|GBP") == [23]


def test_a_new_customers_order_is_judged_against_the_accounts_range() -> None:
    rig = order_rig(customer_history=[30], account_history=[float(v) for v in range(40, 80)])
    big_order(rig, 2_500)

    rig.flow().handle([order_notice(ORDER)])

    assert flags(rig.store) == [("AnomalyOrderValue", "orders-to-brightpearl", ORDER)]
    assert "the account's median" in rig.store.audit.entries[-1].description


def test_without_enough_history_no_order_is_called_unusual() -> None:
    rig = order_rig(customer_history=[20, 21], account_history=[20, 21, 22])
    big_order(rig, 10_000)

    rig.flow().handle([order_notice(ORDER)])

    assert flags(rig.store) == []


def test_held_for_review_an_unusual_order_waits_until_an_operator_asks_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANOMALY_HOLD_FOR_REVIEW", "OrderValue")
    rig = order_rig(customer_history=[20, 22, 24, 25, 23, 21])
    big_order(rig, 10_000)

    assert rig.flow().handle([order_notice(ORDER)]) == [Completed()]

    assert rig.orders == []  # held: nothing reached Brightpearl
    [held] = [e for e in rig.store.audit.entries if e.flow == "orders-to-brightpearl"]
    assert (held.result, held.reason_code) == (AuditResult.NEEDS_REVIEW, "AnomalyOrderValue")
    assert "held for review" in held.description
    # review accept / syncctl sync publish a notice naming who asked: it goes through
    asked = order_notice(ORDER)
    asked = asked.model_copy(
        update={"notice": asked.notice.model_copy(update={"detail": {"requested_by": "ops"}})}
    )
    assert rig.flow().handle([asked]) == [Completed()]
    assert len(rig.orders) == 1


# ------------------------------------------------------------------------------ stock (Azurite)
class StockRig:
    def __init__(self, store: Any, settings: StockSettings | None = None) -> None:
        self.bp, self.dv, self.store = FakeBrightpearl(), FakeDataverse(products_active_on_create=True), store
        self.flow = StockToDataverse(
            brightpearl=self.bp,
            dataverse=self.dv,
            store=store,
            publish=lambda e: None,
            settings=settings or StockSettings(),
        )

    def product(self, stock: float) -> str:
        product_id = self.bp.add_product(
            {"identity": {"sku": f"SKU-{len(self.bp.products)}"}, "stock": {"stockTracked": True}}
        )
        self.dv.add(
            "products",
            {
                "bpi_brightpearlid": str(product_id),
                "statecode": 0,
                "statuscode": 1,
                "bpi_availablestock": stock,
            },
        )
        return str(product_id)


def stock_notice(*ids: str, sweep: bool = False) -> Envelope:
    from tests.unit.flows.stock.test_stock_to_dataverse import notice

    envelope = notice(*ids)
    if sweep:
        envelope = envelope.model_copy(
            update={"notice": envelope.notice.model_copy(update={"detail": {"sweep": True}})}
        )
    return envelope


def test_stock_dropping_to_zero_or_below_is_flagged_on_the_store(state_store: StateStore) -> None:
    rig = StockRig(state_store)
    emptied, negative, steady = rig.product(5), rig.product(2), rig.product(9)
    rig.bp.set_stock(int(emptied), 2, onHand=0)
    rig.bp.set_stock(int(negative), 2, onHand=-1)
    rig.bp.set_stock(int(steady), 2, onHand=8)

    assert rig.flow.handle([stock_notice(emptied, negative, steady)]) == [Completed()]

    assert sorted(flags(state_store)) == sorted(
        [
            ("AnomalyStockDepleted", "stock-to-dataverse", emptied),
            ("AnomalyStockDepleted", "stock-to-dataverse", negative),
        ]
    )
    assert "fell from 5 to 0" in " ".join(e.description for e in state_store.audit.recent(AUDIT_FLOW))


def test_the_sweep_finding_dynamics_out_of_step_is_a_stock_mismatch_on_the_store(
    state_store: StateStore,
) -> None:
    rig = StockRig(state_store)
    drifted, announced = rig.product(5), rig.product(5)
    rig.bp.set_stock(int(drifted), 2, onHand=7)  # no stock event reached the flow for it
    rig.bp.set_stock(int(announced), 2, onHand=6)

    rig.flow.handle([stock_notice(drifted, announced, sweep=True), stock_notice(announced)])

    assert flags(state_store) == [("AnomalyStockMismatch", "stock-to-dataverse", drifted)]
    # the figure was repaired as usual
    assert {r["bpi_brightpearlid"]: r["bpi_availablestock"] for r in rig.dv.tables["products"].values()} == {
        drifted: 7,
        announced: 6,
    }


def test_allocation_the_sweep_exists_for_is_no_mismatch(state_store: StateStore) -> None:
    rig = StockRig(state_store, StockSettings(measure="inStock"))
    product = rig.product(5)
    rig.bp.set_stock(int(product), 2, onHand=5, inStock=3, allocated=2)

    rig.flow.handle([stock_notice(product, sweep=True)])

    assert flags(state_store) == []


def test_anomaly_values_live_outside_the_pollers_cursors(state_store: StateStore) -> None:
    from shared.ops.console import poller_cursors

    update(values_of(state_store), "orders|account|GBP", lambda _: [1.0, 2.0])

    assert read(values_of(state_store), "orders|account|GBP") == [1.0, 2.0]
    assert state_store.cursors.get("orders|account|GBP") is None
    assert poller_cursors(state_store, datetime.now(UTC)) == []


# ------------------------------------------------------------------------------ spikes
def test_a_burst_of_dead_letters_is_one_spike_flag_in_that_hour() -> None:
    rig = CustomerRig()
    quiet = [customer_notice("brightpearl", "contact", f"abc{i}") for i in range(2)]
    rig.to_dv.handle(quiet)  # 2 dead letters: no spike
    assert flags(rig.store) == []

    burst = rig.to_dv.handle([customer_notice("brightpearl", "contact", f"bad{i}") for i in range(25)])
    again = rig.to_dv.handle([customer_notice("brightpearl", "contact", f"worse{i}") for i in range(25)])

    assert all(isinstance(o, DeadLetter) for o in [*burst, *again])  # flags change no outcome
    assert flags(rig.store) == [
        ("AnomalyDeadLetterSpike", "customers-to-dataverse", "customers-to-dataverse")
    ]
    [row] = [e for e in rig.store.audit.entries if e.flow == AUDIT_FLOW]
    assert "27 dead letters in the hour" in row.description  # 2 + 25: the threshold crossed once


def test_dead_letters_as_many_as_usual_are_no_spike() -> None:
    rig = CustomerRig()
    now = datetime.now(UTC)
    usual = {(now - timedelta(hours=h)).strftime("%Y%m%d%H"): {"d": 30} for h in range(1, 25)}
    update(values_of(rig.store), "spikes|customers-to-dataverse", lambda _: {"h": usual, "f": []})

    rig.to_dv.handle([customer_notice("brightpearl", "contact", f"bad{i}") for i in range(32)])

    assert flags(rig.store) == []


def test_a_burst_of_deletions_is_a_deletion_spike() -> None:
    rig = CustomerRig()
    deleted = [
        customer_notice("brightpearl", "contact", str(1000 + i), operation="deleted") for i in range(30)
    ]

    rig.to_dv.handle(deleted)

    assert flags(rig.store) == [("AnomalyDeletionSpike", "customers-to-dataverse", "customers-to-dataverse")]


# ------------------------------------------------------------------------------ e-mail churn
def change_email(rig: CustomerRig, bp_id: str, n: int) -> list[Any]:
    rig.edit_shop(
        bp_id,
        communication={"emails": {"PRI": {"email": f"ada{n}@example.org"}}},
        updatedOn=f"2099-01-01T00:00:{n:02d}+00:00",
    )
    return rig.to_dv.handle([customer_notice("brightpearl", "contact", bp_id)])


def test_a_customer_whose_email_changes_more_than_n_times_a_day_is_flagged_once_past_n(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = CustomerRig()
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org")
    rig.to_dv.handle([customer_notice("brightpearl", "contact", bp_id)])  # created: no change
    for n in range(1, 4):  # three changes: the limit (3), no flag
        change_email(rig, bp_id, n)
    assert flags(rig.store) == []

    with caplog.at_level(logging.INFO, logger="bpsync"):
        assert change_email(rig, bp_id, 4) == [Completed()]

    assert flags(rig.store) == [("AnomalyEmailChurn", "customers-to-dataverse", bp_id)]
    assert rig.dv_contact_of(bp_id)["emailaddress1"] == "ada4@example.org"  # not blocked
    [row] = [e for e in rig.store.audit.entries if e.flow == AUDIT_FLOW]
    assert "changed 4 times today" in row.description
    [event] = [r for r in caplog.records if getattr(r, CUSTOM_EVENT_NAME, None) == EVENT]
    assert (event.kind, event.reason, event.record) == ("EmailChurn", "AnomalyEmailChurn", bp_id)  # type: ignore[attr-defined]
    text = " ".join(
        [*(e.description for e in rig.store.audit.entries), *(r.getMessage() for r in caplog.records)]
    )
    assert "example.org" not in text  # never the address


def test_held_for_review_the_change_past_the_limit_is_not_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_HOLD_FOR_REVIEW", "EmailChurn")
    monkeypatch.setenv("ANOMALY_EMAIL_CHANGES_PER_DAY", "1")
    rig = CustomerRig()
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org")
    rig.to_dv.handle([customer_notice("brightpearl", "contact", bp_id)])
    change_email(rig, bp_id, 1)

    change_email(rig, bp_id, 2)

    assert rig.dv_contact_of(bp_id)["emailaddress1"] == "ada1@example.org"
    assert rig.audit("customers-to-dataverse")[-1] == (bp_id, AuditResult.NEEDS_REVIEW, "AnomalyEmailChurn")
    assert flags(rig.store) == [("AnomalyEmailChurn", "customers-to-dataverse", bp_id)]


def test_detection_off_raises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_DETECTION", "false")
    rig = CustomerRig()
    rig.to_dv.handle([customer_notice("brightpearl", "contact", f"bad{i}") for i in range(40)])
    assert flags(rig.store) == []


# ------------------------------------------------------------------------------ the console
def test_every_anomaly_reason_has_a_runbook_fix_and_flags_are_a_flow_on_the_console(
    state_store: StateStore,
) -> None:
    from shared.anomaly.flags import KINDS, Flag, emit
    from shared.ops import runbook
    from shared.ops.console import flow_names

    assert all(runbook.fix_for(f"Anomaly{kind}") is not None for kind in KINDS)
    emit(
        state_store.audit,
        [Flag("StockDepleted", "stock-to-dataverse", "product", "brightpearl", "7", "fell")],
    )

    assert flow_names(state_store, ["stock-to-dataverse"]) == ["stock-to-dataverse", AUDIT_FLOW]
    [row] = state_store.audit.recent(AUDIT_FLOW)
    assert (row.result, row.reason_code, row.source_id) == (AuditResult.ANOMALY, "AnomalyStockDepleted", "7")
