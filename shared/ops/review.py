"""The needs-review list, and the operator's accept / dismiss (`syncctl review list|accept|dismiss`).

A flow marks a record `needs-review` in the audit when it will not decide alone (a likely
duplicate, an e-mail matching several records, a link to a record that no longer exists); the
audit row's description says what to check. The list holds every record whose newest audit
row in that flow is still that needs-review row:

- a later outcome of the same record in the same flow (it synced after someone fixed it)
  takes it off the list;
- `dismiss` writes an operator row (reason ReviewDismissed): the operator decided nothing is
  to be done; it stays off the list until the flow flags the record again;
- `accept` writes an operator row (reason ReviewAccepted) and publishes a change notice for the
  record (shared/ops/sync_now.py), so the flow runs it again now that the operator has fixed
  what the description asked for; if the cause is still there the flow flags it again and it
  comes back on the list.

Reading: one filtered query per flow over the window's day partitions for needs-review rows
(server-side filter on `result`), then the newest rows of each flagged record
(`AuditLog.for_record`, a key-range query), so the cost follows the flagged records, not the
audit's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.store.audit import AuditEntry, AuditResult

Decision = Literal["accept", "dismiss"]
DECISIONS: dict[Decision, str] = {"accept": "ReviewAccepted", "dismiss": "ReviewDismissed"}
DEFAULT_DAYS = 30
MAX_FLAGGED = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ReviewItem:
    """One record waiting for an operator's decision."""

    flow: str
    entity: str  # the audit entity (customer, product, order)
    system: str  # the source system of the flagged record
    record_id: str
    reason: str | None
    description: str
    at: datetime | None
    message_id: str | None

    @property
    def key(self) -> str:
        """How an operator names it: `<flow>/<record id>`."""
        return f"{self.flow}/{self.record_id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "flow": self.flow,
            "entity": self.entity,
            "system": self.system,
            "recordId": self.record_id,
            "reason": self.reason,
            "description": self.description,
            "at": self.at.isoformat() if self.at else None,
            "messageId": self.message_id,
        }


def _flagged(audit: Any, flow: str, days: int, limit: int) -> Iterable[AuditEntry]:
    """The needs-review rows of `flow` in the last `days`, newest first."""
    from shared.store.audit import _entry_from_row, _flow_partition
    from shared.store.tables import query

    now = audit._clock()
    rows = query(
        audit.table,
        "PartitionKey ge @newest and PartitionKey le @oldest and result eq @result",
        {
            "newest": _flow_partition(flow, now),
            "oldest": _flow_partition(flow, now - timedelta(days=days)),
            "result": AuditResult.NEEDS_REVIEW.value,
        },
        "read needs-review rows",
        page_size=min(limit, 1000),
    )
    for count, row in enumerate(rows):
        if count >= limit:
            return
        yield _entry_from_row(row)


def _newest_in_flow(audit: Any, entry: AuditEntry) -> AuditEntry | None:
    rows = audit.for_record(entry.entity, entry.source_system, entry.source_id, limit=50)
    mine = [r for r in rows if r.flow == entry.flow]
    return max(mine, key=causal_order) if mine else None


def causal_order(entry: AuditEntry) -> tuple[datetime, int]:
    """Sort key of audit rows in the order things happened: by time, and at the same instant an
    operator's action before the outcome it led to (clocks of whole seconds, fake clocks)."""
    return (entry.at or _EPOCH, 0 if entry.result is AuditResult.OPERATOR else 1)


def needs_review(
    audit: Any, flows: Sequence[str], *, days: int = DEFAULT_DAYS, limit: int = MAX_FLAGGED
) -> list[ReviewItem]:
    """Records of `flows` whose newest audit row in that flow is needs-review, newest first."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    items: dict[tuple[str, str], ReviewItem] = {}
    resolved: set[tuple[str, str]] = set()
    for flow in flows:
        for entry in _flagged(audit, flow, days, limit):
            key = (flow, entry.source_id)
            if key in items or key in resolved:
                continue
            newest = _newest_in_flow(audit, entry)
            if newest is None or newest.result is not AuditResult.NEEDS_REVIEW:
                resolved.add(key)  # a later outcome or decision: older flags of it are settled too
                continue
            items[key] = ReviewItem(
                flow=flow,
                entity=newest.entity,
                system=newest.source_system,
                record_id=newest.source_id,
                reason=newest.reason_code,
                description=newest.description,
                at=newest.at,
                message_id=newest.message_id,
            )
    return sorted(items.values(), key=lambda i: i.at or _EPOCH, reverse=True)


def find(items: Iterable[ReviewItem], key: str) -> ReviewItem | None:
    """The item named `<flow>/<record id>` or, when only one flow flags it, `<record id>`."""
    key = key.strip()
    matches = [i for i in items if i.key == key or i.record_id.lower() == key.lower()]
    exact = [i for i in matches if i.key == key]
    if exact:
        return exact[0]
    if len(matches) > 1:
        raise ValueError(
            f"{key!r} is flagged by several flows; name one: {', '.join(i.key for i in matches)}"
        )
    return matches[0] if matches else None


def decide(
    audit: Any,
    item: ReviewItem,
    decision: Decision,
    *,
    actor: str,
    note: str = "",
    resync: Callable[[ReviewItem], str | None] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Write the operator's decision to the audit (result operator, reason ReviewAccepted or
    ReviewDismissed, in the record's own flow). `accept` calls `resync(item)` (publish a change
    notice for the record; returns its message id, named in the row). Give `now` (taken before
    the notice is published) so the row sorts before the outcome the notice leads to."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be accept or dismiss, not {decision!r}")
    at = now  # None: the audit log's own clock stamps it when written
    sent = resync(item) if decision == "accept" and resync is not None else None
    what = "accepted (the record is synced again)" if decision == "accept" else "dismissed"
    description = f"{actor}: needs-review [{item.reason or '-'}] {what}"
    if sent:
        description += f"; notice {sent} published"
    if note:
        description += f"; note: {note}"
    entry = AuditEntry(
        flow=item.flow,
        entity=item.entity,
        source_system=item.system,
        source_id=item.record_id,
        result=AuditResult.OPERATOR,
        reason_code=DECISIONS[decision],
        description=description,
        message_id=sent,
        at=at,
    )
    written: AuditEntry = audit.record(entry)
    return written


def resync(item: ReviewItem, *, actor: str) -> str:
    """Publish a change notice for the item's record through this process's bus (shared.runtime),
    so its flow runs it again now; the notice's message id."""
    from shared import runtime
    from shared.ops.records import record
    from shared.ops.sync_now import request_sync, runtime_publish, runtime_source

    ref = record(item.system, item.entity, item.record_id)
    source = runtime_source(item.system)
    sent = request_sync(ref, publish=runtime_publish, source=source, now=runtime.clock(), actor=actor)
    return sent.message_id


SKU_FLOW = "orders-to-brightpearl"
SKU_REASON = "SkuNeedsReview"  # shared/flows/orders_to_brightpearl.py SKU_NEEDS_REVIEW


def accept_sku(
    links: Any,
    audit: Any,
    dynamics_product: str,
    brightpearl_product: int,
    *,
    actor: str,
    note: str = "",
    resync: Callable[[ReviewItem], str | None] | None = None,
    now: datetime | None = None,
    days: int = DEFAULT_DAYS,
) -> list[ReviewItem]:
    """An operator's choice among SKU candidates (`syncctl review accept-sku`): the Dynamics
    product and the Brightpearl product are linked (`product` link, Brightpearl the source as
    the products flow has it), so every later order line of that product matches by link; then
    each order flagged SkuNeedsReview naming the Dynamics product is accepted (synced again).
    Returns those orders. A product linked to another one already raises ValueError."""
    from shared.store.errors import ClaimTaken, StoreConflictError

    dv_id = dynamics_product.strip().lower()
    try:
        links.link("product", "brightpearl", str(int(brightpearl_product)), "dataverse", dv_id)
    except ClaimTaken as taken:
        held = taken.link.id_in("dataverse") if taken.link is not None else None
        raise ValueError(
            f"Brightpearl product {brightpearl_product} is linked to Dynamics product "
            f"{held or '(being linked)'} already; order that product in Dynamics instead"
        ) from None
    except StoreConflictError:
        raise ValueError(
            f"Dynamics product {dv_id} is linked to another Brightpearl product already: "
            "its orders match by that link"
        ) from None
    flagged = [
        i
        for i in needs_review(audit, [SKU_FLOW], days=days)
        if i.reason == SKU_REASON and dv_id in i.description.lower()
    ]
    for item in flagged:
        why = note or f"SKU match: Dynamics product {dv_id} is Brightpearl product {brightpearl_product}"
        decide(audit, item, "accept", actor=actor, note=why, resync=resync, now=now)
    return flagged
