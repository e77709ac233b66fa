"""Flow orders-to-dataverse: Brightpearl order status -> Dynamics salesorder state (issue 13 item 4).

Built and unit-tested on fakes, not wired yet (its spec is in registry.BUILDING).

Per batch of Brightpearl `order` notices (`order.modified.order-status`): coalesce the order
ids; read the orders in bulk (`GET /order-service/order/{ID-SET}`, ≤ 200 a call, reference
§6.4); find each one's Dynamics order through the `order` link orders-to-brightpearl wrote (no
link: the order did not come from Dynamics, so it is not ours, and it is `skipped` with reason
`NotFromDynamics`); map its status through `mappings/order_status.yaml` (by pinned id, then by
name; a status it lacks is `StatusNotMapped`, naming the status name and id and the order
number, never personal data); read the Dynamics orders' statecode/statuscode in bulk (one `In`
query per 100 orders); and write only those that differ, all in one `$batch`:

- Active and Submitted states by PATCH of statecode/statuscode (SetState, reference
  dataverse-api.md §10.5);
- Fulfilled through the collection-bound `FulfillSalesOrder` action (OrderClose + Status);
- Canceled and Invoiced are not written: CancelSalesOrder's binding is unconfirmed and
  invoicing belongs to the 360° issue, so a status mapped to them is dead-lettered
  `StateChangeNotSupported` with the fix (map it to an Active, Submitted or Fulfilled state).

A state change Dynamics refuses is that order's dead letter with Dynamics' message (through
the one error table, shared/resilience.py); throttling or an outage on either side is a retry.
Echo-safe: Dynamics' current values are what is compared, so our own write coming back (or a
repeated notice) writes nothing, and orders-to-brightpearl leaves linked orders alone; the
link's hashes belong to orders-to-brightpearl and are not touched here.
"""

from __future__ import annotations

from typing import Any, Self, Unpack

from pydantic import BaseModel

from shared.dataverse import odata
from shared.dataverse.models import BatchOperation
from shared.flows.orders_spec import ORDERS, TO_DATAVERSE
from shared.mapping.orders_config import load_order_mapping
from shared.mapping.orders_status import CANCELED, FULFILLED, SALESORDER_STATES, OrderStatusMapping
from shared.mapping.translation import Translation
from shared.quality.issues import QualityIssue
from shared.sync.engine import FlowPorts, PlainDecision, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, chunked
from shared.systems import System

ORDER_GET = "/order-service/order/{ids}"
LOOKUP_CHUNK = 100  # Dynamics orders per `In` query
BATCH_LIMIT = 1000  # operations per $batch (reference dataverse-api.md)
NOT_OURS = "NotFromDynamics"
NOT_SUPPORTED = "StateChangeNotSupported"
INVOICED = 4
FULFIL_ACTION = "salesorders/Microsoft.Dynamics.CRM.FulfillSalesOrder"


class OrderState(BaseModel):
    """A Dynamics salesorder state: wanted (from a Brightpearl status) or held."""

    statecode: int | None = None
    statuscode: int | None = None
    order_number: str | None = None  # Brightpearl `reference` = the Dynamics order number
    status: str = ""  # the Brightpearl status as shown in messages: 'Shipped' (id 7)


Record = SyncRecord[OrderState]


class OrdersToDataverse(RecordSync[OrderState]):
    """Brightpearl order status -> Dynamics salesorder statecode/statuscode. Hooks: fetch
    (orders by id set), skip (not a sales order), match (link, then the Dynamics orders in
    bulk), write (one $batch of state changes)."""

    spec = TO_DATAVERSE
    link_entity = ORDERS.link_entity

    def __init__(self, *, statuses: OrderStatusMapping, **ports: Unpack[FlowPorts]) -> None:
        super().__init__(**ports)
        self.statuses = statuses

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters and the status file mappings/orders.yaml names."""
        return cls(statuses=load_order_mapping().statuses, **cls.runtime_ports())

    # ------------------------------------------------------------------------------ hooks
    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The orders of the whole id set (≤ 200 a GET); an id Brightpearl lacks is left out."""
        found = self.bp.get_by_ids(ORDER_GET, [int(i) for i in ids], limit=200)
        return {str(o["id"]): dict(o) for o in found}

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        kind = source.get("orderTypeCode") or "SO"
        if kind == "SO":
            return False
        results.set(
            record_id,
            RecordResult("skipped", None, f"{self.label} {record_id} is a {kind}, not a sales order"),
        )
        return True

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[OrderState]:
        if system == "dataverse":
            return Translation(
                OrderState(
                    statecode=record.get("statecode"),
                    statuscode=record.get("statuscode"),
                    order_number=record.get("ordernumber"),
                )
            )
        status = record.get("orderStatus") or {}
        status_id, name = status.get("orderStatusId"), status.get("name")
        shown = " ".join(p for p in (repr(name) if name else None, f"(id {status_id})") if p)
        number = record.get("reference") or None
        answer = self.statuses.dataverse_state(
            status_id, name, order_id=str(record["id"]), order_number=number
        )
        if isinstance(answer, QualityIssue):
            return Translation(OrderState(order_number=number, status=shown), [answer])
        state, code = answer
        return Translation(OrderState(statecode=state, statuscode=code, order_number=number, status=shown))

    def content_hash(self, value: OrderState, system: System) -> str:
        return f"{value.statecode}/{value.statuscode}"

    def is_echo(self, r: Record) -> bool:
        """Never by the link: its hashes are orders-to-brightpearl's; Dynamics' values decide."""
        return False

    def unchanged_since_sync(self, link: Any, system: System, current: OrderState) -> bool:
        return False

    def decide_write(self, record: Record, current: OrderState | None) -> PlainDecision[OrderState]:
        wanted = record.read.value
        desired = self.content_hash(wanted, "dataverse")
        if record.read.fatal:
            return PlainDecision[OrderState](
                wanted, desired, False, list(record.read.issues), fatal=True, reason=record.read.reason
            )
        held = self.content_hash(current, "dataverse") if current is not None else None
        return PlainDecision[OrderState](wanted, desired, should_write=held != desired)

    def match(self, records: list[Record], results: BatchResults) -> None:
        """Each order's Dynamics order through its link, then those orders' states in bulk."""
        links = self.store.links.get_many(self.link_entity, "brightpearl", [r.source_id for r in records])
        linked: list[Record] = []
        for r in records:
            link = links.get(r.source_id)
            target = link.id_in("dataverse") if link is not None and link.is_linked else None
            if target is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "skipped",
                        NOT_OURS,
                        f"{self.label} {r.source_id} has no link to a Dynamics order: it was not "
                        "created from Dynamics, so its status is not written back",
                    ),
                )
                continue
            r.link, r.target_id, r.matched_by = link, target.lower(), "link"
            linked.append(r)
        rows: dict[str, dict[str, Any]] = {}
        for chunk in chunked(linked, LOOKUP_CHUNK):
            select = ["salesorderid", "ordernumber", "statecode", "statuscode"]
            wanted = odata.in_("salesorderid", [r.target_id or "" for r in chunk])
            for found in self.dv.query("salesorders", select=select, filter=wanted):
                rows[str(found.values["salesorderid"]).lower()] = dict(found.values)
        for r in linked:
            row = rows.get(r.target_id or "")
            if row is None:
                results.set(
                    r.source_id,
                    RecordResult(
                        "skipped",
                        None,
                        f"{self.label} {r.source_id}: its Dynamics order {r.target_id} no longer "
                        "exists; nothing to write",
                    ),
                )
            else:
                r.target = row

    def write(self, records: list[Record], results: BatchResults) -> None:
        """One $batch of the changed states (PATCH, or FulfillSalesOrder), then settle each."""
        todo = self.to_write(records, results)
        changes: list[tuple[Record, BatchOperation]] = []
        for r in todo:
            if not self._decision(r).should_write:
                continue
            op = self._operation(r, results)
            if op is not None:
                changes.append((r, op))
        for chunk in chunked(changes, BATCH_LIMIT):
            answers = self.dv.execute_batch([op for _, op in chunk], continue_on_error=True)
            for (r, _), answer in zip(chunk, answers, strict=True):
                if not answer.ok:
                    results.error(r.source_id, answer.error, f"{self._what(r)} state change")
        for r in todo:
            if not results.has(r.source_id):
                self.settle(r, results, f" (state {self._decision(r).desired_hash})")

    def remember(self, r: Record) -> None:
        """Nothing: Dynamics' own values are what the next batch compares with, and the link's
        hashes are orders-to-brightpearl's."""

    # ------------------------------------------------------------------------------ helpers
    @staticmethod
    def _decision(r: Record) -> PlainDecision[OrderState]:
        assert isinstance(r.decision, PlainDecision)
        return r.decision

    def _what(self, r: Record) -> str:
        number = (r.target or {}).get("ordernumber") or r.read.value.order_number
        shown = f" {number}" if number else ""
        return f"Dynamics order{shown} ({r.target_id}) of {self.label} {r.source_id}"

    def _operation(self, r: Record, results: BatchResults) -> BatchOperation | None:
        """The request that moves the order into the wanted state (None: refused here)."""
        wanted = self._decision(r).payload
        state, status = wanted.statecode, wanted.statuscode
        if state == FULFILLED:
            close = {
                "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
                "salesorderid@odata.bind": f"/salesorders({r.target_id})",
                "subject": f"Brightpearl order {r.source_id}: {wanted.status}",
            }
            return BatchOperation("POST", FULFIL_ACTION, {"OrderClose": close, "Status": status})
        if state in (CANCELED, INVOICED):
            name = SALESORDER_STATES[state or 0][0]
            results.set(
                r.source_id,
                RecordResult(
                    "fatal",
                    NOT_SUPPORTED,
                    f"{self._what(r)}: order_status.yaml maps Brightpearl status {wanted.status} to "
                    f"statecode {state} ({name}), which the status write-back does not write yet "
                    "(CancelSalesOrder / invoicing); map the status to an Active, Submitted or "
                    "Fulfilled state, then resubmit",
                    stamp=str(r.source.get(self.spec.stamp_field) or ""),
                ),
            )
            return None
        body = {"statecode": state, "statuscode": status}
        return BatchOperation("PATCH", odata.record_path("salesorders", r.target_id or ""), body)
