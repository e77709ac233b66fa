"""Flow returns-to-dataverse: Brightpearl sales credits -> Dynamics cases (issue 14 item 2).

Per batch of `sales-credit` notices (the sales-credit poller, shared/flows/returns_poller.py):

1. read the credits in bulk (`GET /order-service/order/{ID-SET}` with their custom fields,
   ≤ 200 a call; an id that is not a sales credit (SC) is skipped) and their parent orders
   (`parentOrderId`, one more GET for the whole batch; reference §6.4, §6.9);
2. find, in bulk: each credit's case (incident by its alternate key `bpi_brightpearlid` = the
   credit id), its customer (the `customer` link of the credit's contact -> Dynamics contact),
   and its order (the `order` link of the parent -> the Dynamics salesorder, read for its order
   number). A customer not in Dynamics yet is a retry (`CustomerNotSynced`). A credit with no
   case yet whose parent order is unknown (no `order` link and not in Brightpearl) waits:
   a retry with reason `ParentOrderUnknown` until the notice's attempt reaches
   `unknown_parent.attempts` of mappings/returns.yaml; then the case opens without the order
   and the audit row says so (needs review, reason `ParentOrderUnknown`);
3. the case: customer, title `Return for order <ref>` (the parent's Brightpearl reference,
   else its Dynamics order number, else its id), a description naming the order (Dynamics
   order number; the incident table has no order lookup, reference dataverse-api.md §10.10) and
   listing the returned lines (SKU, name, quantity, reason, value), origin, type and priority
   from the mapping (set on creation only: agents may triage afterwards);
4. write, in two `$batch`es: the new cases, each an upsert by alternate key that may only
   create (`PATCH incidents(bpi_brightpearlid='<id>')` with `If-None-Match: *`: a duplicate
   notice, a second worker or a restarted host finds the case or gets 412, never a second
   case); then per case its content changes and its state:
   - refunded (the credit's `orderPaymentStatus` is in `resolve.payment_statuses`, PAID once a
     PAYMENT customer payment covers it, or its status is in `resolve.statuses`): resolved with
     an incident resolution through the `CloseIncident` action;
   - cancelled (its status is in `cancel.statuses`): PATCH statecode 2 (Cancelled);
   a case no longer active is left as it is, so resolving twice is a no-op; a close Dynamics
   refuses because another worker closed the case meanwhile is `unchanged`.

Content written is remembered as a hash on the `sales-credit` link: a credit whose Brightpearl
content did not change writes nothing, so an agent's edits of the title or description stay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Self, Unpack

from pydantic import BaseModel

from shared.dataverse import odata
from shared.dataverse.models import BatchOperation, BatchResult
from shared.events import Envelope
from shared.flows.returns_spec import RETURNS, TO_DATAVERSE, returns_mapping_path
from shared.mapping.orders_history import amount
from shared.mapping.returns_config import ReturnsMapping, load_returns_mapping
from shared.mapping.translation import Translation
from shared.outcomes import Outcome
from shared.store.errors import StoreConflictError
from shared.sync.engine import FlowPorts, PlainDecision, RecordSync, SyncRecord
from shared.sync.outcomes import BatchResults, RecordResult, chunked
from shared.systems import System
from shared.telemetry import get_logger

log = get_logger("flows.returns")

ORDER_GET = "/order-service/order/{ids}"  # credits and orders alike (≤ 200 a call, §6.4)
INCIDENTS = "incidents"
KEY = "bpi_brightpearlid"
PARENT = "_parent"  # the credit's parent order as fetch() files it (None: not in Brightpearl)
ACTIVE, RESOLVED, CANCELLED = 0, 1, 2
STATE_NAMES = {ACTIVE: "Active", RESOLVED: "Resolved", CANCELLED: "Cancelled"}
CUSTOMER_NOT_SYNCED = "CustomerNotSynced"
PARENT_UNKNOWN = "ParentOrderUnknown"
TITLE_LIMIT, DESCRIPTION_LIMIT = 200, 2000  # incident.title, incident.description (tables.yaml)
CASE_COLUMNS = ["incidentid", KEY, "title", "description", "_customerid_value", "statecode", "statuscode"]
Outcome_ = Literal["open", "refunded", "cancelled"]
StateOp = Literal["resolve", "cancel"]
STATE_OPS: dict[str, StateOp | None] = {"refunded": "resolve", "cancelled": "cancel", "open": None}


class ReturnLine(BaseModel):
    sku: str
    name: str
    quantity: Decimal
    value: Decimal  # the row's net value


class Credit(BaseModel):
    """What a case is made from: a Brightpearl sales credit and its parent order."""

    credit_id: int
    reference: str = ""
    parent_id: int = 0
    parent_reference: str = ""  # the parent's Brightpearl reference ('' when not found or empty)
    parent_found: bool = False  # Brightpearl has the parent order
    customer_id: int | None = None  # Brightpearl contact
    currency: str = ""
    net: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    reason: str = ""
    lines: list[ReturnLine] = []
    status_id: int | None = None
    status_name: str = ""
    payment_status: str = ""
    outcome: Outcome_ = "open"


@dataclass
class CasePlan:
    """What one credit's case should be, and what the write does to it."""

    content: dict[str, Any]  # title, description, customer bind (written on create and on change)
    options: dict[str, Any]  # origin, type, priority (create only)
    content_hash: str
    customer: str  # Dynamics contactid
    outcome: Outcome_
    flag: str | None = None  # audited reason the case carries (ParentOrderUnknown)
    create: bool = False
    changes: dict[str, Any] = field(default_factory=dict)
    state_op: StateOp | None = None
    done: list[str] = field(default_factory=list)  # what was written, for the audit description


Record = SyncRecord[Credit]


class ReturnsToDataverse(RecordSync[Credit]):
    """Brightpearl sales credits -> Dynamics cases. Hooks: fetch (credits and parents), skip (not
    a credit), to_canonical, match (case, customer, order), decide, write (two $batches)."""

    spec = TO_DATAVERSE
    records_per_pass = 1_000  # Brightpearl orders (about 20 KB each) read and written at a time
    link_entity = RETURNS.link_entity

    def __init__(self, *, mapping: ReturnsMapping, **ports: Unpack[FlowPorts]) -> None:
        super().__init__(**ports)
        self.mapping = mapping
        self._attempts: dict[str, int] = {}
        self._context: dict[str, tuple[str, dict[str, Any] | None, str | None]] = {}

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters and the mapping RETURNS_MAPPING_PATH names; the
        wait for an unknown parent must end before retries do (RETRY_MAX_ATTEMPTS)."""
        from shared import runtime

        path = returns_mapping_path()
        mapping = load_returns_mapping(path)
        most = runtime.settings().retry.max_attempts
        if mapping.unknown_parent.attempts >= most:
            raise ValueError(
                f"{path}: unknown_parent.attempts ({mapping.unknown_parent.attempts}) must be below "
                f"RETRY_MAX_ATTEMPTS ({most}), or a credit of an unknown order is dead-lettered "
                "(RetriesExhausted) before its case opens"
            )
        return cls(mapping=mapping, **cls.runtime_ports())

    # ------------------------------------------------------------------------------ hooks
    def handle(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """As every flow; first note the highest attempt of the notices naming each credit."""
        self._attempts, self._context = {}, {}
        for envelope in envelopes:
            for record_id in envelope.notice.ids:
                self._attempts[record_id] = max(self._attempts.get(record_id, 1), envelope.attempt)
        return super().handle(envelopes)

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The credits (with custom fields when a reason field is configured), each with its
        parent order (`_parent`; None when Brightpearl has none)."""
        params = {"includeOptional": "customFields"} if self.mapping.reason_field else None
        found = {
            str(o["id"]): dict(o)
            for o in self.bp.get_by_ids(ORDER_GET, [int(i) for i in ids], limit=200, params=params)
        }
        wanted = sorted({_int(o.get("parentOrderId")) for o in found.values()} - {0})
        parents: dict[int, dict[str, Any]] = {}
        if wanted:
            parents = {int(o["id"]): dict(o) for o in self.bp.get_by_ids(ORDER_GET, wanted, limit=200)}
        for credit in found.values():
            credit[PARENT] = parents.get(_int(credit.get("parentOrderId")))
        return found

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        kind = source.get("orderTypeCode") or ""
        if kind == "SC":
            return False
        results.set(
            record_id,
            RecordResult(
                "skipped", None, f"Brightpearl order {record_id} is a {kind or '?'}, not a sales credit"
            ),
        )
        return True

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[Credit]:
        return Translation(read_credit(record, self.mapping))

    def match(self, records: list[Record], results: BatchResults) -> None:
        """The case of each credit (by key), its customer and order (links); a credit without a
        case whose parent order is unknown waits (retry) until its attempts are spent."""
        ids = [r.source_id for r in records]
        cases = self._cases(ids)
        links = self.store.links.get_many(self.link_entity, "brightpearl", ids)
        credits = [r.read.value for r in records]
        customers = self.store.links.get_many(
            "customer", "brightpearl", sorted({str(c.customer_id) for c in credits if c.customer_id})
        )
        orders = self.store.links.get_many(
            "order", "brightpearl", sorted({str(c.parent_id) for c in credits if c.parent_id})
        )
        order_ids = {
            p: (link.id_in("dataverse") or "").lower() for p, link in orders.items() if link.is_linked
        }
        salesorders = self._salesorders([i for i in order_ids.values() if i])
        for r in records:
            credit = r.read.value
            r.link = links.get(r.source_id)
            row = cases.get(r.source_id)
            if row is not None:
                r.target, r.target_id, r.matched_by = row, str(row["incidentid"]).lower(), "key"
            customer_link = customers.get(str(credit.customer_id)) if credit.customer_id else None
            contact = customer_link.id_in("dataverse") if customer_link and customer_link.is_linked else None
            if not contact:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        CUSTOMER_NOT_SYNCED,
                        f"{self.label} {r.source_id}: its Brightpearl customer "
                        f"{credit.customer_id or '(none)'} is not linked to a Dynamics contact yet "
                        "(the customers flow links it); retried",
                    ),
                )
                continue
            salesorder = salesorders.get(order_ids.get(str(credit.parent_id), ""))
            flag = None
            if salesorder is None and not credit.parent_found:
                attempt, attempts = self._attempts.get(r.source_id, 1), self.mapping.unknown_parent.attempts
                if r.target is None and attempt < attempts:
                    results.set(
                        r.source_id,
                        RecordResult(
                            "transient",
                            PARENT_UNKNOWN,
                            f"{self.label} {r.source_id} waits for its order: Brightpearl order "
                            f"{credit.parent_id or '(none)'} is neither linked to a Dynamics order nor in "
                            f"Brightpearl (attempt {attempt} of {attempts}; then the case opens without it)",
                        ),
                    )
                    continue
                flag = PARENT_UNKNOWN
            self._context[r.source_id] = (contact.lower(), salesorder, flag)

    def decide(self, records: list[Record], results: BatchResults) -> None:
        """Per credit: create its case, or write what changed in Brightpearl since the last sync
        (by the link's hash), and the state it should reach from Active."""
        for r in records:
            if results.has(r.source_id):
                continue
            contact, salesorder, flag = self._context[r.source_id]
            plan = case_plan(r.read.value, self.mapping, contact, salesorder, flag)
            held = r.target
            if held is None:
                plan.create = True
            elif held.get("statecode") == ACTIVE:
                synced = (
                    r.link is not None
                    and r.link.is_linked
                    and r.link.hash_of("dataverse") == plan.content_hash
                )
                if not synced:
                    plan.changes = content_changes(plan, held)
            if held is None or held.get("statecode") == ACTIVE:
                plan.state_op = STATE_OPS[plan.outcome]
            should = plan.create or bool(plan.changes) or plan.state_op is not None
            r.decision = PlainDecision[Any](plan, plan.content_hash, should_write=should)

    def write(self, records: list[Record], results: BatchResults) -> None:
        """New cases first (create-only upserts by key), then content changes and states."""
        todo = self.to_write(records, results)
        self._create([r for r in todo if _plan(r).create], results)
        ops: list[tuple[Record, BatchOperation, str]] = []
        for r in todo:
            if results.has(r.source_id) or not r.target_id:
                continue
            plan = _plan(r)
            path = f"{INCIDENTS}({r.target_id})"
            if plan.changes:
                ops.append((r, BatchOperation("PATCH", path, plan.changes), "update"))
            if plan.state_op == "resolve":
                ops.append((r, self._resolution(r), "resolution (CloseIncident)"))
            elif plan.state_op == "cancel":
                change = {"statecode": CANCELLED, "statuscode": self.mapping.cancel.status}
                ops.append((r, BatchOperation("PATCH", path, change), "cancellation"))
        refused: list[Record] = []
        for chunk in chunked(ops, 1000):
            answers = self.dv.execute_batch([op for _, op, _ in chunk], continue_on_error=True)
            for (r, _, what), answer in zip(chunk, answers, strict=True):
                if answer.ok:
                    _plan(r).done.append(what.split(" ")[0])
                elif not results.has(r.source_id):
                    refused.append(r)
                    results.error(
                        r.source_id,
                        answer.error,
                        f"Dynamics case {r.target_id} {what} of {self.label} {r.source_id}",
                    )
        self._closed_meanwhile(refused, results)
        for r in todo:
            if not results.has(r.source_id) and r.target_id:
                self.remember(r)
                self._settle_case(r, results)

    def remember(self, r: Record) -> None:
        """The link credit <-> case with the content hash written (or found)."""
        plan = _plan(r)
        if not r.target_id or not (plan.create or plan.changes or r.link is None):
            return
        h = plan.content_hash
        try:
            if r.link is None or not r.link.is_linked:
                self.store.links.link(
                    self.link_entity,
                    "brightpearl",
                    r.source_id,
                    "dataverse",
                    r.target_id,
                    source_hash=h,
                    target_hash=h,
                )
            else:
                self.store.links.record_hashes(
                    self.link_entity,
                    "brightpearl",
                    r.source_id,
                    {"brightpearl": h, "dataverse": h},
                    etag=r.link.etag,
                )
        except StoreConflictError as exc:  # another worker recorded it meanwhile: the case is written
            log.info("link of %s %s not recorded: %s", self.label, r.source_id, type(exc).__name__)

    # ------------------------------------------------------------------------------ steps
    def _cases(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The cases of these credits, by credit id (alternate key bpi_brightpearlid)."""
        rows: dict[str, dict[str, Any]] = {}
        for of_credits in odata.in_chunks(KEY, ids):
            for row in self.dv.query(INCIDENTS, select=CASE_COLUMNS, filter=of_credits):
                rows[str(row.values[KEY])] = dict(row.values)
        return rows

    def _salesorders(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        select = ["salesorderid", "ordernumber", "name"]
        for of_orders in odata.in_chunks("salesorderid", sorted(set(ids))):
            for row in self.dv.query("salesorders", select=select, filter=of_orders):
                rows[str(row.values["salesorderid"]).lower()] = dict(row.values)
        return rows

    def _create(self, records: list[Record], results: BatchResults) -> None:
        """One create-only upsert per new case (`If-None-Match: *`); 412: it exists already
        (another worker, an earlier run cut short), so it is read and brought up to date."""
        raced: list[Record] = []
        read_back: list[Record] = []
        for chunk in chunked(records, 1000):
            ops = [
                BatchOperation(
                    "PATCH",
                    f"{INCIDENTS}({KEY}={odata.literal(r.source_id)})?$select=incidentid",
                    {**_plan(r).options, **_plan(r).content, KEY: r.source_id},
                    headers={"If-None-Match": "*", "Prefer": "return=representation"},
                )
                for r in chunk
            ]
            for r, answer in zip(chunk, self.dv.execute_batch(ops, continue_on_error=True), strict=True):
                if answer.ok:
                    _plan(r).done.append("created")
                    r.target_id = _entity_id(answer)
                    r.target = {"statecode": ACTIVE}
                    if not r.target_id:  # no id in the answer: read it back by key
                        read_back.append(r)
                elif answer.status == 412:
                    raced.append(r)
                else:
                    results.error(r.source_id, answer.error, f"Dynamics case of {self.label} {r.source_id}")
        if not raced and not read_back:
            return
        rows = self._cases([r.source_id for r in raced + read_back])
        for r in read_back:
            row = rows.get(r.source_id)
            if row is not None:
                r.target, r.target_id = {**row, "statecode": ACTIVE}, str(row["incidentid"]).lower()
            else:
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        "StateConflict",
                        f"{self.label} {r.source_id}: its new case was not found",
                    ),
                )
        for r in raced:
            row = rows.get(r.source_id)
            if row is None:  # 412 yet not found: let the retry look again
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        "StateConflict",
                        f"{self.label} {r.source_id}: its case was created meanwhile",
                    ),
                )
                continue
            plan = _plan(r)
            r.target, r.target_id, r.matched_by = row, str(row["incidentid"]).lower(), "key"
            plan.create = False
            plan.changes = content_changes(plan, row)
            if row.get("statecode") != ACTIVE:
                plan.state_op = None

    def _resolution(self, r: Record) -> BatchOperation:
        credit, mapping = r.read.value, self.mapping
        status = credit.status_name or credit.status_id
        why = f"orderPaymentStatus {credit.payment_status or '(none)'}, status {status}"
        resolution = {
            "@odata.type": "Microsoft.Dynamics.CRM.incidentresolution",
            "subject": mapping.resolve.subject,
            "incidentid@odata.bind": f"/{INCIDENTS}({r.target_id})",
            "description": f"Brightpearl sales credit {credit.credit_id} refunded ({why}): "
            f"{_money(credit.net + credit.tax)} {credit.currency}".strip(),
        }
        return BatchOperation(
            "POST", "CloseIncident", {"IncidentResolution": resolution, "Status": mapping.resolve.status}
        )

    def _closed_meanwhile(self, refused: list[Record], results: BatchResults) -> None:
        """Cases whose change Dynamics refused, read again: closed meanwhile (another worker
        resolved or cancelled it) is unchanged, not a dead letter."""
        if not refused:
            return
        rows = self._cases([r.source_id for r in refused])
        for r in refused:
            row = rows.get(r.source_id)
            if row is not None and row.get("statecode") != ACTIVE and _plan(r).state_op is not None:
                state = STATE_NAMES.get(row.get("statecode") or 0, str(row.get("statecode")))
                results.set(
                    r.source_id,
                    RecordResult(
                        "unchanged",
                        None,
                        f"{self.label} {r.source_id}: its Dynamics case {r.target_id} is {state} already "
                        "(closed meanwhile by another worker)",
                        target_id=r.target_id,
                    ),
                )

    def _settle_case(self, r: Record, results: BatchResults) -> None:
        plan = _plan(r)
        done = ", ".join(plan.done) or "nothing to write"
        if not plan.done and r.target is not None and r.target.get("statecode") != ACTIVE:
            state = STATE_NAMES.get(r.target.get("statecode") or 0, str(r.target.get("statecode")))
            done = f"the case is {state}: left as it is"
        self.settle(r, results, f" ({done})")
        if plan.flag:
            result = results.by_id[r.source_id]
            result.kind = "needs-review" if plan.create else result.kind
            result.reason = plan.flag
            result.description += (
                f"; flagged {plan.flag}: opened without its order (Brightpearl order "
                f"{r.read.value.parent_id or '(none)'} is neither linked to a Dynamics order "
                "nor in Brightpearl)"
            )


# ---------------------------------------------------------------------------------- translation
def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f}"


def _quantity(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


def _reason(record: Mapping[str, Any], field_code: str) -> str:
    value = (record.get("customFields") or {}).get(field_code) if field_code else None
    if isinstance(value, dict):
        value = value.get("value")
    return str(value).strip() if value not in (None, "") else ""


def read_credit(record: Mapping[str, Any], mapping: ReturnsMapping) -> Credit:
    """A Brightpearl sales credit (order GET shape, with `_parent`) as a Credit."""
    parent = record.get(PARENT)
    status = record.get("orderStatus") or {}
    totals = record.get("totalValue") or {}
    rows = sorted(
        (record.get("orderRows") or {}).items(),
        key=lambda kv: (_int((kv[1] or {}).get("orderRowSequence")), _int(kv[0])),
    )
    lines = [
        ReturnLine(
            sku=str(row.get("productSku") or ""),
            name=str(row.get("productName") or ""),
            quantity=amount(row.get("quantity")),
            value=amount((row.get("rowValue") or {}).get("rowNet") or {}),
        )
        for _, row in rows
    ]
    credit = Credit(
        credit_id=_int(record.get("id")),
        reference=str(record.get("reference") or ""),
        parent_id=_int(record.get("parentOrderId")),
        parent_reference=str((parent or {}).get("reference") or ""),
        parent_found=parent is not None,
        customer_id=_int(((record.get("parties") or {}).get("customer") or {}).get("contactId")) or None,
        currency=str((record.get("currency") or {}).get("orderCurrencyCode") or ""),
        net=amount(totals.get("net")),
        tax=amount(totals.get("taxAmount")),
        reason=_reason(record, mapping.reason_field),
        lines=lines,
        status_id=_int(status.get("orderStatusId")) or None,
        status_name=str(status.get("name") or ""),
        payment_status=str(record.get("orderPaymentStatus") or "").upper(),
    )
    refunded = credit.payment_status in mapping.resolve.payment_statuses or mapping.status_in(
        mapping.resolve.statuses, credit.status_id, credit.status_name
    )
    cancelled = mapping.status_in(mapping.cancel.statuses, credit.status_id, credit.status_name)
    credit.outcome = "refunded" if refunded else "cancelled" if cancelled else "open"
    return credit


def order_reference(credit: Credit, salesorder: Mapping[str, Any] | None) -> str:
    """The order a case names in its title: the parent's Brightpearl reference, else its
    Dynamics order number, else its Brightpearl id."""
    number = str((salesorder or {}).get("ordernumber") or "")
    return credit.parent_reference or number or (str(credit.parent_id) if credit.parent_id else "unknown")


def description(credit: Credit, mapping: ReturnsMapping, salesorder: Mapping[str, Any] | None) -> str:
    """The case description: the credit and its order, then one line per returned row."""
    ref = f" ({credit.reference})" if credit.reference else ""
    head = [
        f"Brightpearl sales credit {credit.credit_id}{ref} for order {order_reference(credit, salesorder)}."
    ]
    if salesorder is not None:
        name = f" - {salesorder['name']}" if salesorder.get("name") else ""
        head.append(f"Dynamics order: {salesorder.get('ordernumber') or salesorder['salesorderid']}{name}")
    elif credit.parent_found:
        head.append(f"Dynamics order: none (Brightpearl order {credit.parent_id} is not in Dynamics)")
    else:
        head.append(
            f"Dynamics order: unknown (Brightpearl order {credit.parent_id or '(none)'} was not found)"
        )
    reason = credit.reason or "not given"
    currency = f" {credit.currency}" if credit.currency else ""
    lines = [
        f"- SKU {line.sku or '-'}, {line.name or '(no name)'}: quantity {_quantity(line.quantity)}, "
        f"reason {reason}, value {_money(line.value)}{currency}"
        for line in credit.lines
    ]
    total = _money(credit.net + credit.tax)
    tail = f"Credit total: {total}{currency} (net {_money(credit.net)}, tax {_money(credit.tax)})"
    text = "\n".join([*head, "Returned lines:", *(lines or ["- none"]), tail])
    if len(text) <= DESCRIPTION_LIMIT:
        return text
    kept: list[str] = []
    for i, line in enumerate(lines):  # keep whole lines and say how many more there are
        more = f"- ... and {len(lines) - i} more line(s)"
        if len("\n".join([*head, "Returned lines:", *kept, line, more, tail])) > DESCRIPTION_LIMIT:
            kept.append(more)
            break
        kept.append(line)
    return "\n".join([*head, "Returned lines:", *kept, tail])[:DESCRIPTION_LIMIT]


def case_plan(
    credit: Credit,
    mapping: ReturnsMapping,
    contact: str,
    salesorder: Mapping[str, Any] | None,
    flag: str | None,
) -> CasePlan:
    content = {
        "title": f"Return for order {order_reference(credit, salesorder)}"[:TITLE_LIMIT],
        "description": description(credit, mapping, salesorder),
        "customerid_contact@odata.bind": f"/contacts({contact})",
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]
    options = {
        "caseorigincode": mapping.case.origin,
        "casetypecode": mapping.case.type,
        "prioritycode": mapping.case.priority,
    }
    return CasePlan(content, options, f"case:{digest}", contact, credit.outcome, flag)


def content_changes(plan: CasePlan, held: Mapping[str, Any]) -> dict[str, Any]:
    """The content columns whose value differs from what the case holds."""
    out = {k: v for k, v in plan.content.items() if "@" not in k and held.get(k) != v}
    if str(held.get("_customerid_value") or "").lower() != plan.customer:
        out["customerid_contact@odata.bind"] = plan.content["customerid_contact@odata.bind"]
    return out


def _plan(r: Record) -> CasePlan:
    assert isinstance(r.decision, PlainDecision) and isinstance(r.decision.payload, CasePlan)
    return r.decision.payload


def _entity_id(answer: BatchResult) -> str | None:
    """The new case's id: from the representation asked for, else from OData-EntityId."""
    body = answer.body if isinstance(answer.body, dict) else {}
    found = body.get("incidentid")
    if not found:
        found = answer.entity_id  # None for an alternate-key URL
    return str(found).lower() if found and odata.is_guid(str(found)) else None
