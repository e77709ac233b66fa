"""Changes after creation (issue 13 item 3) on the in-memory fakes: a Dynamics line edit reaches the
Brightpearl rows (only the changed ones) while the order's status is editable, else needs-review
OrderLocked with no write; a Dynamics cancellation moves the order to the cancelled status, or
needs-review CancelRefused under the reference's rule; redelivery writes nothing; throttling
and outages retry without writing a row twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.brightpearl.errors import (
    BrightpearlAmbiguousWrite,
    BrightpearlThrottled,
    BrightpearlUnavailable,
    BrightpearlValidationError,
)
from shared.flows.orders_changes import plan_rows
from shared.mapping.config import MappingError
from shared.mapping.orders_config import ChangeSettings, parse_order_mapping, read_order_mapping
from shared.outcomes import Completed, DeadLetter, RetryLater
from shared.store import AuditResult
from tests.unit.flows.orders.test_orders_to_brightpearl import LINE_1, LINE_2, MAPPING, ORDER, Rig, notice

EDITABLE = MAPPING.model_copy(update={"changes": ChangeSettings(editable_statuses=("Awaiting payment",))})
AWAITING, CANCELLED, SHIPPED = 4, 5, 6  # the mapping creates orders in status 4
LINE_3 = "01000000-0000-4000-8000-000000000003"


class Changes(Rig):
    """An order created in Brightpearl (status Awaiting Payment), then edited in Dynamics."""

    def __init__(self) -> None:
        super().__init__(EDITABLE)
        self.bp.order_statuses = {AWAITING: "Awaiting Payment", CANCELLED: "Cancelled", SHIPPED: "Shipped"}
        self.bp.cancelled_status = CANCELLED
        self.standard()
        assert self.flow().handle([notice(ORDER)]) == [Completed()]
        [self.bp_id] = self.bp.sales_orders
        self.bp.calls.clear()
        self.store.audit.entries.clear()

    @property
    def held(self) -> dict[str, Any]:
        return self.bp.sales_orders[self.bp_id]

    def rows(self) -> list[tuple[Any, ...]]:
        return [
            (r.get("productId") or r.get("name"), r["quantity"], r["net"], r["taxCode"])
            for r in self.held["rows"]
        ]

    def edit(self, line: str, **values: Any) -> None:
        self.dv.tables["salesorderdetails"][line].update(values)

    def cancel_in_dynamics(self) -> None:
        self.dv.tables["salesorders"][ORDER].update(statecode=2, statuscode=4)

    def audit(self) -> list[tuple[Any, ...]]:
        return [(e.result, e.reason_code, e.description) for e in self.store.audit.entries]

    def writes(self) -> list[str]:
        return [c for c in self.bp.calls if c not in ("get_by_ids", "get_order_statuses", "search_products")]


def test_a_line_edit_while_editable_puts_only_the_changed_row():
    rig = Changes()
    before = rig.rows()
    rig.edit(LINE_1, quantity=3, tax=5.8)  # 3 x 10 less 1 = 29 net, 20 % tax
    assert rig.flow().handle([notice(LINE_1, entity="salesorderdetail")]) == [Completed()]
    assert rig.bp.calls == ["get_by_ids", "put_sales_order_rows"]  # one read, one PUT
    assert rig.rows() == [(rig.mug, "3.0000", "29.0000", "T20"), *before[1:]]
    [(result, reason, description)] = rig.audit()
    assert result == AuditResult.SYNCED and reason is None
    assert "rows: 1 changed, 0 added, 0 removed" in description


def test_added_and_removed_lines_reach_brightpearl_and_a_redelivery_writes_nothing():
    rig = Changes()
    rig.line(LINE_3, isproductoverridden=True, productdescription="Card", quantity=2, priceperunit=1.5, tax=0)
    del rig.dv.tables["salesorderdetails"][LINE_2]
    flow = rig.flow()
    assert flow.handle([notice(ORDER)]) == [Completed()]
    assert rig.writes() == ["add_order_row", "delete_order_row"]  # the mug row is left alone
    assert [r[0] for r in rig.rows()] == [rig.mug, "Order discount", "Shipping", "Card"]
    assert rig.rows()[3] == ("Card", "2.0000", "3.0000", "T0")

    rig.line(
        LINE_2, isproductoverridden=True, productdescription="Gift wrap", quantity=1, priceperunit=2, tax=0
    )
    rig.bp.calls.clear()
    assert flow.handle([notice(LINE_2, entity="salesorderdetail")]) == [Completed()]
    assert rig.writes() == ["add_order_row"]
    assert ("Gift wrap", "1.0000", "2.0000", "T0") in rig.rows()

    rig.bp.calls.clear()
    again = [notice(ORDER), notice(LINE_2, entity="salesorderdetail")]
    assert rig.flow().handle(again) == [Completed(), Completed()]
    assert rig.bp.calls == []  # the link holds this content: no read, no write
    assert len(rig.held["rows"]) == 5


def test_an_order_whose_rows_already_match_writes_nothing_and_is_not_read_again():
    rig = Changes()
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]  # our own bpi_brightpearlid echo
    assert rig.bp.calls == []
    rig.dv.tables["salesorders"][ORDER]["name"] = "Renamed web order"  # a header edit: same rows
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.bp.calls == ["get_by_ids"]  # read, compared, nothing written
    assert rig.audit()[-1][0] == AuditResult.SKIPPED and "already holds" in rig.audit()[-1][2]
    rig.bp.calls.clear()
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.bp.calls == []  # its hash was recorded


@pytest.mark.parametrize(
    ("lock", "why"),
    [
        (lambda held: held.update(statusId=SHIPPED), "status 'Shipped' is not in changes.editable_statuses"),
        (lambda held: held.update(invoices=[{"invoiceReference": "SI-1"}]), "it is invoiced"),
    ],
)
def test_a_line_edit_while_locked_is_needs_review_order_locked_with_no_write(lock, why):
    rig = Changes()
    lock(rig.held)
    rows = rig.rows()
    rig.edit(LINE_1, quantity=3, tax=5.8)
    assert rig.flow().handle([notice(LINE_1, entity="salesorderdetail")]) == [Completed()]
    assert rig.writes() == [] and rig.rows() == rows
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == (AuditResult.NEEDS_REVIEW, "OrderLocked")
    assert why in description and "ORD-01001" in description and "1 changed" in description
    rig.bp.calls.clear()
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]  # not recorded as synced: tried again
    assert rig.bp.calls == ["get_by_ids"] and rig.audit()[-1][1] == "OrderLocked"


def test_a_row_change_brightpearl_refuses_is_order_locked_and_retried_later():
    rig = Changes()
    rig.edit(LINE_1, quantity=3, tax=5.8)
    rig.bp.fail_next["put_sales_order_rows"] = [
        BrightpearlValidationError("quantity cannot drop below the 2 already on goods-out notes", status=400)
    ]
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == (AuditResult.NEEDS_REVIEW, "OrderLocked")
    assert "Brightpearl refused the line edit" in description and "goods-out notes" in description


@pytest.mark.parametrize(
    "fault",
    [
        BrightpearlThrottled("Brightpearl throttled PUT for longer than 30s", status=503, retry_after=5),
        BrightpearlUnavailable("Brightpearl answered 503", status=503),
    ],
)
def test_throttling_or_an_outage_retries_and_the_retry_writes_each_row_once(fault):
    rig = Changes()
    rig.edit(LINE_1, quantity=3, tax=5.8)
    rig.line(LINE_3, isproductoverridden=True, productdescription="Card", quantity=1, priceperunit=1, tax=0)
    rig.bp.fail_next["put_sales_order_rows"] = [fault]
    [outcome] = rig.flow().handle([notice(ORDER)])
    assert isinstance(outcome, RetryLater)
    assert rig.audit() == []  # a transient failure is not audited
    assert rig.flow().handle([notice(ORDER, attempt=2)]) == [Completed()]
    assert [r[0] for r in rig.rows()].count("Card") == 1  # posted in the first attempt, not again
    assert rig.rows()[0] == (rig.mug, "3.0000", "29.0000", "T20")
    assert rig.bp.calls.count("add_order_row") == 1


def test_a_lost_row_post_answer_does_not_add_the_row_twice():
    rig = Changes()
    rig.line(LINE_3, isproductoverridden=True, productdescription="Card", quantity=1, priceperunit=1, tax=0)
    add = rig.bp.add_order_row

    def lost(order_id: int, row: Any) -> int:
        add(order_id, row)
        raise BrightpearlAmbiguousWrite("POST /order-service/order/1/row timed out after it was sent")

    rig.bp.add_order_row = lost  # type: ignore[method-assign]
    [outcome] = rig.flow().handle([notice(ORDER)])
    assert isinstance(outcome, RetryLater)
    rig.bp.add_order_row = add  # type: ignore[method-assign]
    assert rig.flow().handle([notice(ORDER, attempt=2)]) == [Completed()]
    assert [r[0] for r in rig.rows()].count("Card") == 1


def test_a_row_posted_with_finer_amounts_is_put_right_in_the_same_pass():
    rig = Changes()
    rig.line(
        LINE_3, isproductoverridden=True, productdescription="Card", quantity=3, priceperunit=0.3333, tax=0
    )
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.writes() == ["add_order_row", "put_sales_order_rows"]  # POST takes 2 d.p.
    assert ("Card", "3.0000", "0.9999", "T0") in rig.rows()


def test_a_cancellation_moves_the_brightpearl_order_to_the_cancelled_status_once():
    rig = Changes()
    rig.cancel_in_dynamics()
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.held["statusId"] == CANCELLED
    assert rig.held["notes"] == ["Cancelled in Dynamics (order ORD-01001)"]
    assert rig.writes() == ["set_order_status"]
    [(result, _, description)] = rig.audit()
    assert result == AuditResult.SYNCED and "moved to status 'Cancelled'" in description
    rig.bp.calls.clear()
    assert rig.flow().handle([notice(ORDER), notice(ORDER)]) == [Completed(), Completed()]
    assert rig.writes() == []  # already cancelled


@pytest.mark.parametrize(
    ("refuse", "why", "asked"),
    [
        (dict(goodsOutNotes=[1]), "goods-out notes", True),  # Brightpearl's own refusal
        (dict(invoices=[{"invoiceReference": "SI-9"}]), "it is invoiced (SI-9)", False),
        (dict(paid="5.00"), "it has payments (PAID)", False),
    ],
)
def test_a_cancellation_the_reference_rule_forbids_is_needs_review_cancel_refused(refuse, why, asked):
    rig = Changes()
    rig.held.update(refuse)
    rig.cancel_in_dynamics()
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.held["statusId"] == AWAITING
    assert rig.writes() == (["set_order_status"] if asked else [])
    [(result, reason, description)] = rig.audit()
    assert (result, reason) == (AuditResult.NEEDS_REVIEW, "CancelRefused")
    assert why in description and "'Cancelled'" in description


def test_a_cancelled_status_the_account_lacks_dead_letters_naming_the_setting():
    rig = Changes()
    rig.bp.order_statuses = {AWAITING: "Awaiting Payment", CANCELLED: "Void"}
    rig.cancel_in_dynamics()
    [outcome] = rig.flow().handle([notice(ORDER)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "CancelledStatusUnknown"
    assert "changes.cancelled_status 'Cancelled'" in outcome.description
    assert rig.held["statusId"] == AWAITING


def test_a_submitted_order_moved_back_to_active_and_edited_still_syncs():
    rig = Changes()  # trigger.when: submit
    rig.dv.tables["salesorders"][ORDER].update(statecode=0, statuscode=1)
    rig.edit(LINE_1, quantity=3, tax=5.8)
    assert rig.flow().handle([notice(LINE_1, entity="salesorderdetail")]) == [Completed()]
    assert rig.rows()[0] == (rig.mug, "3.0000", "29.0000", "T20")


def test_an_edit_adding_an_unknown_sku_dead_letters_it_and_writes_nothing():
    rig = Changes()
    rig.ghost_line()
    [outcome] = rig.flow().handle([notice(ORDER)])
    assert isinstance(outcome, DeadLetter) and outcome.reason == "UnknownSku"
    assert rig.writes() == []


def test_rows_pair_by_external_ref_then_content_then_product():
    from shared.brightpearl.models import OrderRow

    def held(product: int | None, name: str, qty: str, net: str, ref: str = "") -> OrderRow:
        return OrderRow.model_validate(
            {
                "productId": product or 0,
                "productName": name,
                "quantity": {"magnitude": qty},
                "rowValue": {"taxCode": "T20", "rowNet": {"value": net}, "rowTax": {"value": "0.00"}},
                "externalRef": ref,
            }
        )

    def wanted(product: int | None, name: str | None, qty: str, net: str, ref: str | None = None) -> dict:
        row = {"quantity": qty, "net": net, "tax": "0.0000", "taxCode": "T20"}
        row.update({"productId": product} if product else {"name": name})
        return {**row, "externalRef": ref} if ref else row

    plan = plan_rows(
        [wanted(7, None, "2", "20", "line-a"), wanted(8, None, "1", "5"), wanted(None, "Shipping", "1", "4")],
        {
            10: held(7, "Mug", "1", "10", "line-a"),  # same line, new quantity -> put
            11: held(8, "Tee", "1", "5"),  # identical -> left alone
            12: held(None, "Shipping", "1", "3"),  # same name -> put
            13: held(9, "Hand-added", "1", "1"),  # nothing wants it -> deleted
        },
    )
    assert [r["id"] for r in plan.put] == [10, 12] and plan.add == [] and plan.delete == [13]
    assert Decimal(plan.put[0]["quantity"]) == 2


def test_the_change_settings_are_checked_by_yaml_path():
    with pytest.raises(MappingError, match=r"changes.editable_statuses\[1\]: String should have at least 1"):
        parse_order_mapping({"changes": {"editable_statuses": ["Awaiting Payment", ""]}})
    with pytest.raises(MappingError, match="'awaiting payment' is listed more than once"):
        parse_order_mapping({"changes": {"editable_statuses": ["Awaiting Payment", "awaiting payment"]}})
    with pytest.raises(MappingError, match=r"changes.cancelled_status: 'Cancelled' is also in"):
        parse_order_mapping({"changes": {"editable_statuses": ["cancelled"]}})
    shipped = read_order_mapping().changes  # mappings/orders.yaml as shipped
    assert shipped.editable("awaiting payment") and shipped.cancelled_status == "Cancelled"


def test_an_order_another_worker_is_changing_waits_then_is_compared_afresh():
    rig = Changes()
    rig.edit(LINE_1, quantity=3, tax=5.8)
    lease = f"orders-changes|lease|{rig.bp_id}"
    assert rig.store.ledger.record(lease, ttl=timedelta(seconds=120))  # another worker holds it
    [outcome] = rig.flow().handle([notice(ORDER)])
    assert isinstance(outcome, RetryLater) and outcome.reason == "StateConflict" and outcome.waiting
    assert rig.bp.calls == []  # not even read
    rig.store.ledger.forget(lease)  # the other worker is done (or its lease ran out)
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.rows()[0] == (rig.mug, "3.0000", "29.0000", "T20")
    assert lease not in rig.store.ledger.held  # released after the write


def test_a_lease_left_by_a_worker_that_died_expires():
    rig = Changes()
    rig.edit(LINE_1, quantity=3, tax=5.8)
    lease = f"orders-changes|lease|{rig.bp_id}"
    assert rig.store.ledger.record(lease, ttl=timedelta(seconds=120))
    rig.store.ledger.expires[lease] -= timedelta(seconds=121)
    assert rig.flow().handle([notice(ORDER)]) == [Completed()]
    assert rig.rows()[0] == (rig.mug, "3.0000", "29.0000", "T20")
