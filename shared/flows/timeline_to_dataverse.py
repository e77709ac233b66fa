"""Flow timeline-to-dataverse: Brightpearl key moments -> the Dynamics customer's timeline.

A service agent sees on the customer, without opening Brightpearl, each moment
mappings/timeline.yaml turns on, as a note (`annotation`, `objectid_contact@odata.bind`) or a
task (`task`, `regardingobjectid_contact_task@odata.bind`; reference dataverse-api.md §10.12):

- order placed: a sales order (orderTypeCode SO), from any channel;
- shipped: a shipped goods-out note of a sales order, with its tracking reference
  (`shipping.reference`), shipping method and date (reference §8.3);
- returned: a sales credit (orderTypeCode SC, `parentOrderId` = the order; §6.9);
- refunded: a sales credit whose payment status is PAID (a customer payment of type PAYMENT
  paid it back).

Per batch: `order`, `sales-order`, `goods-out-note` and `sales-credit` notices become moments
(`expand`: one GET of the notes named, one of the orders and credits, one of the notes of the
orders that shipped something, one of the credits' parent orders); each notice stands for its
moments. A moment's record id is `<kind>:<Brightpearl id>` (`order_placed:100001`,
`shipped:7`). The customer is the order's (or credit's) `parties.customer.contactId`, found
in Dynamics through the `customer` link the customers flow keeps; a customer not in Dynamics
yet is a retry (`CustomerNotSynced`), so the moment arrives once the customer does.

Exactly once: a moment's activity id is uuid5 of its key, written as an upsert that may only
create (`PATCH annotations(<id>)` with `If-None-Match: *`, the documented way to create a
record with a chosen id; reference §3.1, §3.4). A second write of the same moment (a
redelivered notice, a restart between write and link, two workers) is refused by Dynamics
with 412 DuplicateRecord (0x80040237, §9.3), which is the answer "already on the timeline".
The `timeline` link (moment key <-> activity id) then spares later notices the write.
Nothing personal is logged: moments are named by kind and Brightpearl id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Self, Unpack

from pydantic import BaseModel

from shared.dataverse.errors import DataverseDuplicateError
from shared.dataverse.models import BatchOperation
from shared.events import Envelope
from shared.flows.timeline_spec import (
    GOODS_OUT_ENTITY,
    ORDER_ENTITY,
    SALES_CREDIT_ENTITY,
    SALES_ORDER_ENTITY,
    TIMELINE,
    TO_DATAVERSE,
)
from shared.mapping.timeline_config import MomentSettings, TimelineMapping, load_timeline_mapping
from shared.mapping.translation import Translation
from shared.sync.engine import Batch, FlowPorts, PlainDecision, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, chunked, in_parallel
from shared.systems import System

ORDER_GET = "/order-service/order/{ids}"  # sales orders and sales credits alike (§6.4)
NOTES_OF_ORDERS = "/warehouse-service/order/{ids}/goods-note/goods-out"  # ≤ 500 orders a call
NOTES_BY_ID = "/warehouse-service/order/*/goods-note/goods-out/{ids}"  # ≤ 500 notes a call
SHIPPED_SOME = ("SPS", "ASS")  # shippingStatusCode: part shipped, all shipped (§6.4)
BATCH_LIMIT = 1000  # operations per $batch
DUPLICATE_RECORD = "0x80040237"  # the id is taken: the moment is already on the timeline
CUSTOMER_WAIT_SECONDS = 60.0  # a customer the customers flow has not brought yet: look again
# The namespace of moment activity ids: uuid5(NAMESPACE, "<kind>:<Brightpearl id>"), fixed forever
NAMESPACE = uuid.UUID("6f1c1f3e-4a52-5d0b-9b7e-b51c7e1e0a14")
ENTITY_SETS = {"note": "annotations", "task": "tasks"}
CUSTOMER_NOT_SYNCED = "CustomerNotSynced"
NO_CUSTOMER = "NoCustomer"
# The notice entity naming the Brightpearl record a moment comes from
MOMENT_SOURCES = {
    "order_placed": ORDER_ENTITY,
    "shipped": GOODS_OUT_ENTITY,
    "returned": SALES_CREDIT_ENTITY,
    "refunded": SALES_CREDIT_ENTITY,
}


class Moment(BaseModel):
    """One key moment of a customer, as it goes on the Dynamics timeline."""

    key: str  # "<kind>:<Brightpearl id>": the record id through the engine, links and audit
    kind: str
    customer: int | None  # the Brightpearl contact id of the customer
    fields: dict[str, str]  # the subject placeholders (shared/mapping/timeline_config.py)
    details: tuple[str, ...]  # the body of the note or task, one line each

    @property
    def activity_id(self) -> str:
        return activity_id(self.key)


Record = SyncRecord[Moment]


def activity_id(key: str) -> str:
    """The Dynamics activity (annotation or task) id of the moment `key`."""
    return str(uuid.uuid5(NAMESPACE, key))


class TimelineToDataverse(RecordSync[Moment]):
    """Brightpearl orders, shipments, returns and refunds -> notes or tasks on the customer.
    Hooks: expand (notices to moments), fetch, match (done moments by link, the customer by
    the customer link), write (one $batch of create-only upserts)."""

    spec = TO_DATAVERSE
    records_per_pass = 1_000  # Brightpearl orders (about 20 KB each) read and written at a time
    link_entity = TIMELINE.link_entity

    def __init__(self, *, mapping: TimelineMapping, **ports: Unpack[FlowPorts]) -> None:
        super().__init__(**ports)
        self.mapping = mapping
        self.kinds = set(mapping.enabled_kinds())
        self._moments: dict[str, Moment] = {}
        self._named: list[str] = []  # moment keys notices named (a dead letter's split-off notice)
        self._contacts: dict[str, str] = {}  # moment key -> Dynamics contactid

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters and the file TIMELINE_MAPPING_PATH names."""
        from shared.flows.timeline_spec import timeline_mapping_path

        return cls(mapping=load_timeline_mapping(timeline_mapping_path()), **cls.runtime_ports())

    # ------------------------------------------------------------------------------ moments
    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        """A Brightpearl id, or a moment key (`shipped:7`): the single-id notice a bad moment is
        split off into for its own dead letter names the moment, whose record is read again."""
        kind, sep, bp_id = record_id.partition(":")
        if sep and kind in MOMENT_SOURCES and bp_id.isdigit() and int(bp_id) > 0:
            self._named.append(record_id)
            batch.add(MOMENT_SOURCES[kind], bp_id)
            return
        super().sort_notice(envelope, record_id, batch, results)

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        """The moments of the notices: each notice id stands for its moments (`batch.derived`)."""
        self._moments = {}
        try:
            return self._expand(batch, results)
        finally:
            for key in self._named:
                if key in self._moments:
                    batch.derived.setdefault(key, []).append(key)
                else:
                    results.set(key, RecordResult("skipped", None, f"{self.label} {key} is no longer due"))
            self._named = []

    def _expand(self, batch: Batch, results: BatchResults) -> list[str]:
        order_ids = list(
            dict.fromkeys(
                [
                    *batch.changed.get(ORDER_ENTITY, []),
                    *batch.changed.get(SALES_ORDER_ENTITY, []),
                    *batch.changed.get(SALES_CREDIT_ENTITY, []),
                ]
            )
        )
        note_ids = batch.changed.get(GOODS_OUT_ENTITY, [])
        notes = self._notes_by_id(note_ids) if note_ids else {}
        wanted = list(dict.fromkeys([*order_ids, *(str(n.get("orderId") or "") for n in notes.values())]))
        readable = [i for i in wanted if i and i != "0"]
        # a pass of orders at a time: only their moments (small) outlive the pass, not the orders
        for ids_of_pass in self.passes(readable):
            in_pass = set(ids_of_pass)
            self._moments_of(
                batch,
                results,
                self._orders(ids_of_pass),
                [i for i in note_ids if self._order_of(notes.get(i)) in in_pass],
                notes,
                [i for i in order_ids if i in in_pass],
            )
        # the notes and ids whose order is in no pass (gone, or no id): each is `missing`
        read = set(readable)
        self._moments_of(
            batch,
            results,
            {},
            [i for i in note_ids if self._order_of(notes.get(i)) not in read],
            notes,
            [i for i in order_ids if i not in read],
        )
        return list(self._moments)

    @staticmethod
    def _order_of(note: Mapping[str, Any] | None) -> str:
        return str((note or {}).get("orderId") or "")

    def _moments_of(
        self,
        batch: Batch,
        results: BatchResults,
        orders: dict[str, dict[str, Any]],
        note_ids: list[str],
        notes: Mapping[str, dict[str, Any]],
        order_ids: list[str],
    ) -> None:
        """The moments of one pass: its goods-out notes and orders (`orders` read for it; a note
        or order id whose order is not there is `missing`)."""
        shipped_notes = self._notes_of(orders) if "shipped" in self.kinds else {}
        parents = self._orders(
            [
                str(o.get("parentOrderId"))
                for o in orders.values()
                if o.get("orderTypeCode") == "SC"
                and o.get("parentOrderId")
                and str(o["parentOrderId"]) not in orders
            ]
        )
        parents.update(orders)
        for note_id in note_ids:
            note = notes.get(note_id)
            order = orders.get(self._order_of(note))
            if note is None or order is None:
                results.set(
                    note_id,
                    RecordResult(
                        "missing",
                        "BrightpearlRecordMissing",
                        f"goods-out note {note_id} (or its order) no longer exists",
                    ),
                )
                continue
            self._derive(batch, results, note_id, self._shipped(note_id, note, order), "goods-out note")
        for order_id in order_ids:
            order = orders.get(order_id)
            if order is None:
                results.set(
                    order_id,
                    RecordResult(
                        "missing",
                        "BrightpearlRecordMissing",
                        f"Brightpearl order {order_id} no longer exists",
                    ),
                )
                continue
            if order.get("orderTypeCode") == "SC":
                found = self._credit_moments(order, parents.get(str(order.get("parentOrderId") or "")))
            elif order.get("orderTypeCode", "SO") == "SO":
                found = self._order_moments(order, shipped_notes.get(order_id, {}))
            else:
                found = []
            self._derive(batch, results, order_id, found, f"Brightpearl order {order_id}")

    def _derive(
        self, batch: Batch, results: BatchResults, notice_id: str, moments: list[Moment], what: str
    ) -> None:
        moments = [m for m in moments if m.kind in self.kinds]
        if not moments:
            if not results.has(notice_id):
                results.set(
                    notice_id,
                    RecordResult("skipped", None, f"{what}: no timeline moment (none due or all off)"),
                )
            return
        for moment in moments:
            self._moments[moment.key] = moment
            batch.derived.setdefault(notice_id, [])
            if moment.key not in batch.derived[notice_id]:
                batch.derived[notice_id].append(moment.key)

    def _orders(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted({int(i) for i in ids if str(i).isdigit() and int(i) > 0})
        if not wanted:
            return {}
        return {str(o["id"]): dict(o) for o in self.bp.get_by_ids(ORDER_GET, wanted, limit=200)}

    def _notes_by_id(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        notes: dict[str, dict[str, Any]] = {}
        for item in self.bp.get_by_ids(NOTES_BY_ID, [int(i) for i in ids], limit=500):
            notes.update({str(k): dict(v) for k, v in dict(item).items()})
        return notes

    def _notes_of(self, orders: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
        """Order id -> its goods-out notes (by note id), for the sales orders that shipped something."""
        shipping = sorted(
            int(i)
            for i, o in orders.items()
            if o.get("orderTypeCode", "SO") == "SO" and o.get("shippingStatusCode") in SHIPPED_SOME
        )
        out: dict[str, dict[str, dict[str, Any]]] = {}
        if shipping:
            for item in self.bp.get_by_ids(NOTES_OF_ORDERS, shipping, limit=500):
                for note_id, note in dict(item).items():
                    out.setdefault(str(note.get("orderId")), {})[str(note_id)] = dict(note)
        return out

    def _order_moments(self, order: dict[str, Any], notes: dict[str, dict[str, Any]]) -> list[Moment]:
        moments = [self._placed(order)]
        for note_id, note in sorted(notes.items(), key=lambda kv: int(kv[0])):
            moments.extend(self._shipped(note_id, note, order))
        return moments

    def _placed(self, order: dict[str, Any]) -> Moment:
        total, currency = _total(order)
        fields = {
            **_order_fields(order),
            "total": total,
            "currency": currency,
            "channel_id": str(((order.get("assignment") or {}).get("current") or {}).get("channelId") or ""),
            "placed_on": str(order.get("placedOn") or ""),
        }
        details = (
            f"Brightpearl sales order {order['id']} (reference {fields['order_reference']}) placed "
            f"{fields['placed_on']}, channel {fields['channel_id'] or '-'}",
            f"Total {total} {currency}",
            *_rows(order),
        )
        return _moment("order_placed", order["id"], order, fields, details)

    def _shipped(self, note_id: str, note: dict[str, Any], order: dict[str, Any]) -> list[Moment]:
        status = note.get("status") or {}
        if not status.get("shipped") or order.get("orderTypeCode", "SO") != "SO":
            return []
        shipping = note.get("shipping") or {}
        fields = {
            **_order_fields(order),
            "note_id": str(note_id),
            "tracking": str(shipping.get("reference") or ""),
            "shipped_on": str(status.get("shippedOn") or ""),
            "shipping_method_id": str(shipping.get("shippingMethodId") or ""),
        }
        quantities = sum(
            float(line.get("quantity") or 0)
            for lines in (note.get("orderRows") or {}).values()
            for line in lines
        )
        details = (
            f"Goods-out note {note_id} of Brightpearl sales order {order['id']} "
            f"(reference {fields['order_reference']}) shipped {fields['shipped_on']}",
            f"Tracking reference: {fields['tracking'] or '(none yet)'}",
            f"Shipping method id: {fields['shipping_method_id'] or '-'}; items: {quantities:g}",
        )
        return [_moment("shipped", note_id, order, fields, details)]

    def _credit_moments(self, credit: dict[str, Any], parent: dict[str, Any] | None) -> list[Moment]:
        total, currency = _total(credit)
        parent_id = str(credit.get("parentOrderId") or "")
        fields = {
            "credit_id": str(credit["id"]),
            "credit_reference": str(credit.get("reference") or credit["id"]),
            "order_id": parent_id,
            "order_reference": str((parent or {}).get("reference") or parent_id),
            "total": total,
            "currency": currency,
        }
        returned = (
            f"Brightpearl sales credit {credit['id']} (reference {fields['credit_reference']}) for sales "
            f"order {parent_id or '-'} (reference {fields['order_reference'] or '-'})",
            f"Credit total {total} {currency}",
            *_rows(credit),
        )
        moments = [_moment("returned", credit["id"], credit, fields, returned)]
        if credit.get("orderPaymentStatus") == "PAID":
            refunded = (
                f"Sales credit {credit['id']} (reference {fields['credit_reference']}) refunded: "
                f"{total} {currency} paid back",
            )
            moments.append(_moment("refunded", credit["id"], credit, fields, refunded))
        return moments

    # ------------------------------------------------------------------------------ hooks
    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {key: self._moments[key].model_dump() for key in ids if key in self._moments}

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[Moment]:
        return Translation(Moment.model_validate(record))

    def content_hash(self, value: Moment, system: System) -> str:
        return value.activity_id

    def is_echo(self, r: Record) -> bool:
        return False

    def decide_write(self, record: Record, current: Moment | None) -> PlainDecision[Moment]:
        moment = record.read.value
        return PlainDecision[Moment](moment, moment.activity_id, should_write=True)

    def match(self, records: list[Record], results: BatchResults) -> None:
        """Moments already written (by their link) are done; the others need their customer in
        Dynamics (the `customer` link), else they wait for it."""
        keys = [r.source_id for r in records]
        done = self.store.links.get_many(self.link_entity, "brightpearl", keys)
        customers = {str(r.read.value.customer) for r in records if r.read.value.customer}
        linked = self.store.links.get_many("customer", "brightpearl", sorted(customers))
        self._contacts = {}
        for r in records:
            moment = r.read.value
            link = done.get(r.source_id)
            if link is not None and link.is_linked:
                r.link, r.target_id = link, link.id_in("dataverse")
                results.set(
                    r.source_id,
                    RecordResult(
                        "unchanged",
                        None,
                        f"{self.label} {r.source_id} is already on the timeline ({link.id_in('dataverse')})",
                        target_id=r.target_id,
                    ),
                )
                continue
            if not moment.customer:
                results.set(
                    r.source_id,
                    RecordResult(
                        "skipped",
                        NO_CUSTOMER,
                        f"{self.label} {r.source_id}: the Brightpearl record has no customer",
                    ),
                )
                continue
            customer = linked.get(str(moment.customer))
            contact = customer.id_in("dataverse") if customer is not None and customer.is_linked else None
            if not contact:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        CUSTOMER_NOT_SYNCED,
                        f"{self.label} {r.source_id}: its customer, Brightpearl contact {moment.customer},"
                        " is not in Dynamics yet (no customer link); retried until the customers flow"
                        " brings it",
                        retry_after=CUSTOMER_WAIT_SECONDS,
                    ),
                )
                continue
            self._contacts[r.source_id] = contact.lower()

    def write(self, records: list[Record], results: BatchResults) -> None:
        """One $batch of create-only upserts; 412 DuplicateRecord = written before."""
        todo = [r for r in self.to_write(records, results) if r.source_id in self._contacts]
        for chunk in chunked(todo, BATCH_LIMIT):
            ops = [self._operation(r) for r in chunk]
            answers = self.dv.execute_batch(ops, continue_on_error=True)
            for r, answer in zip(chunk, answers, strict=True):
                r.target_id = r.read.value.activity_id
                if answer.ok:
                    self.settle(
                        r, results, f" ({self._written_as(r)} on contact {self._contacts[r.source_id]})"
                    )
                elif (
                    isinstance(answer.error, DataverseDuplicateError)
                    and answer.error.code == DUPLICATE_RECORD
                ):
                    r.matched_by = "key"
                    results.set(
                        r.source_id,
                        RecordResult(
                            "unchanged",
                            None,
                            f"{self.label} {r.source_id} -> {self._written_as(r)} {r.target_id}: already on"
                            " the timeline (written before; Dynamics refused a second one with its id)",
                            target_id=r.target_id,
                        ),
                    )
                else:
                    results.error(
                        r.source_id,
                        answer.error,
                        f"Dynamics {self._written_as(r)} of {self.label} {r.source_id}",
                    )
        in_parallel(
            self.remember,
            [
                r
                for r in todo
                if results.by_id.get(r.source_id)
                and results.by_id[r.source_id].kind in ("synced", "unchanged")
            ],
        )

    def _settings(self, r: Record) -> MomentSettings:
        return self.mapping.moments.of(r.read.value.kind)

    def _written_as(self, r: Record) -> str:
        return self._settings(r).write_as

    def _operation(self, r: Record) -> BatchOperation:
        moment, settings = r.read.value, self._settings(r)
        contact = self._contacts[r.source_id]
        subject = " ".join(settings.subject.format_map(_Blank(moment.fields)).split())
        body_text = "\n".join(moment.details)
        body: dict[str, Any]
        if settings.write_as == "task":
            body = {
                "subject": subject[:200],
                "description": body_text[:2000],
                "prioritycode": settings.priority_code,
                "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})",
            }
            if settings.due_in_days is not None:
                due = datetime.now(UTC) + timedelta(days=settings.due_in_days)
                body["scheduledend"] = due.replace(microsecond=0).isoformat().replace("+00:00", "Z")
        else:
            body = {
                "subject": subject[:500],
                "notetext": body_text[:100_000],
                "isdocument": False,
                "objectid_contact@odata.bind": f"/contacts({contact})",
            }
        path = f"{ENTITY_SETS[settings.write_as]}({moment.activity_id})"
        return BatchOperation("PATCH", path, body, {"If-None-Match": "*"})


class _Blank(dict[str, str]):
    """Template values: a placeholder the moment has no value for renders empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _moment(
    kind: str, record_id: Any, order: dict[str, Any], fields: dict[str, str], details: tuple[str, ...]
) -> Moment:
    contact = str(((order.get("parties") or {}).get("customer") or {}).get("contactId") or "")
    return Moment(
        key=f"{kind}:{record_id}",
        kind=kind,
        customer=int(contact) if contact.isdigit() and int(contact) > 0 else None,
        fields=fields,
        details=details,
    )


def _order_fields(order: dict[str, Any]) -> dict[str, str]:
    return {"order_id": str(order["id"]), "order_reference": str(order.get("reference") or order["id"])}


def _total(order: dict[str, Any]) -> tuple[str, str]:
    total = str((order.get("totalValue") or {}).get("total") or "")
    currency = str((order.get("currency") or {}).get("orderCurrencyCode") or "")
    return total, currency


def _rows(order: dict[str, Any]) -> list[str]:
    """One line per order row: quantity x SKU name (net)."""
    lines = []
    for row in (order.get("orderRows") or {}).values():
        quantity = (row.get("quantity") or {}).get("magnitude") or ""
        net = ((row.get("rowValue") or {}).get("rowNet") or {}).get("value") or ""
        sku = row.get("productSku") or ""
        name = row.get("productName") or ""
        what = " ".join(p for p in (sku, name) if p) or "item"
        lines.append(f"- {_number(quantity)} x {what} ({_number(net, places=2)})")
    return lines


def _number(text: object, places: int = 0) -> str:
    """A Brightpearl decimal as people read it: "2.0000" -> "2", "25.0000" -> "25.00" (places=2);
    digits beyond `places` are kept when they are not zero."""
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return str(text)
    exact = value.quantize(Decimal(1).scaleb(-places)) if places else value.to_integral_value()
    return f"{exact:f}" if exact == value else f"{value.normalize():f}"
