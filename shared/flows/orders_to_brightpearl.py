"""Flow orders-to-brightpearl: Dynamics sales orders -> Brightpearl sales orders (issue 13).

Built and unit-tested on fakes, not wired yet (its spec is in registry.BUILDING).

Per batch: coalesce order ids (an order product notice stands for its order); read the orders
(currency expanded, customer lookup annotated) and all their lines (product number expanded)
in two `In` queries; keep those the trigger setting selects (`trigger.when`: submitted, every
order, or `bpi_sendtobrightpearl` on); check them (shared/model/order.py: OrderHasNoLines,
InvalidQuantity, CurrencyMissing); resolve the customer through the customer links (an account
through its primary contact) and each line's product through the product links, else by SKU
matching (shared/mapping/sku_match.py: exact, channel affixes, normalised, identifiers; a SKU with
only fuzzy or ambiguous candidates sends the order to review, SkuNeedsReview); then create each
order exactly once:

1. a creation claim in `links` (two workers never create the same order);
2. a look-up by `externalRef` (= the salesorder id) before creating whenever an earlier
   attempt may have POSTed (its claim carries the `posting` mark: taken over after a crash
   between the Brightpearl create and our link write, or kept after a POST that timed out
   after Brightpearl committed it); a fresh claim goes straight to the POST;
3. ONE atomic `POST /order-service/sales-order/` with every row (lines, discount, freight);
4. the link (completing the claim) and `bpi_brightpearlid` written back to Dataverse (one
   UpdateMultiple per batch).

A POST whose answer is lost (BrightpearlAmbiguousWrite) keeps its claim pending and retries: the
retry's look-up finds the order and links it. A customer not linked yet is asked for (a
contact or account notice to the customers flow) and the order retried, up to
`customer_wait.attempts`; then `CustomerNotSynced`. A SKU Brightpearl lacks dead-letters the
order at once (`UnknownSku`), or after `unknown_sku.wait_minutes` with `action: wait`.
Orders already linked (changes after creation, issue 13 item 3) go to shared/flows/orders_changes.py:
line edits reach the Brightpearl rows while its status is editable, a cancellation moves it to
the cancelled status; the trigger setting does not apply to them.
Won opportunities (optional, `trigger.opportunity_won`) make their order the same way, from
their opportunity products: shared/flows/orders_opportunity.py.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Self, Unpack

from shared.brightpearl import errors as bp_errors
from shared.brightpearl.models import SalesOrderCreate
from shared.dataverse import odata
from shared.dataverse.models import BatchOperation
from shared.events import Envelope, notices_in_chunks
from shared.flows.orders_changes import OrderChanges, is_canceled
from shared.flows.orders_history import brightpearl_owned, owned_result
from shared.flows.orders_opportunity import (
    SALESORDERS,
    is_opportunity,
    one_order_per_sale,
    order_from_opportunity,
    read_opportunities,
    read_with_lines,
    skip_opportunity,
    with_opportunity_ref,
)
from shared.flows.orders_spec import TO_BRIGHTPEARL, order_mapping_path
from shared.mapping.orders_config import OrderMapping, load_order_mapping
from shared.mapping.orders_translate import (
    order_from_dataverse,
    order_hash,
    sales_order_body,
)
from shared.mapping.sku_match import (
    ProductQuery,
    SkuMatch,
    SkuMatcher,
    dynamics_columns,
    review_text,
    with_details,
)
from shared.mapping.translation import Translation
from shared.model.order import Order, order_issues
from shared.quality.issues import IssueCode, QualityIssue, Severity
from shared.resilience import classify
from shared.store.errors import ClaimTaken, StoreConflictError
from shared.store.links import Claim, Link
from shared.sync.engine import Batch, FlowPorts, RecordSync, SyncRecord, integration_echo
from shared.sync.outcomes import BatchResults, RecordResult, waiting_on_claim
from shared.systems import System
from shared.telemetry import get_logger

log = get_logger("flows.orders_to_brightpearl")

CUSTOMER_RETRY_SECONDS = 120.0
SKU_RETRY_SECONDS = 300.0
NOT_WRITTEN = " (bpi_brightpearlid not written back: the link holds it)"
POSTING = "posting"  # claim progress: the sales-order POST may have been sent
SKU_NEEDS_REVIEW = "SkuNeedsReview"  # a line's product has only fuzzy or ambiguous candidates
Record = SyncRecord[Order]


@dataclass
class OrderDecision:
    """What deciding one order yields (the engine's Decision protocol)."""

    issues: list[QualityIssue] = field(default_factory=list)
    desired_hash: str = ""
    payload: Any = None  # the SalesOrderCreate body
    should_write: bool = True

    @property
    def fatal(self) -> bool:
        return any(i.fatal for i in self.issues)

    @property
    def reason(self) -> str | None:
        first = next((i for i in self.issues if i.fatal), None)
        return str(first.code) if first is not None else None


class OrdersToBrightpearl(RecordSync[Order]):
    """Dataverse sales orders -> Brightpearl sales orders. Hooks: sort_notice (attempts and
    first sight per order), expand (lines stand for their order; reads orders and lines),
    fetch, skip (the trigger setting), match (link, customer, products), decide_write, write
    (claimed, looked up by externalRef, one POST, linked, id written back)."""

    spec = TO_BRIGHTPEARL
    link_entity = "order"
    batch_ids_shown = 5

    def __init__(
        self,
        *,
        mapping: OrderMapping | None = None,
        currencies: Collection[str] | None = None,
        installed_integration_instance_id: int | None = None,
        integration_user_id: str | None = None,
        trust_integration_user: bool = False,
        source: str = "/dataverse/orders",
        now: Any = None,
        **ports: Unpack[FlowPorts],
    ) -> None:
        """`currencies`: the ISO codes Brightpearl's account has (None: not checked here; the
        POST refuses an unknown one). `installed_integration_instance_id`: from OAuth, with
        externalRef Brightpearl's unique key of the order."""
        super().__init__(**ports)
        self.mapping = mapping or load_order_mapping()
        self.currencies = currencies
        self.instance_id = installed_integration_instance_id
        # the integration writes salesorders too (order history, the write-back): with the user
        # trusted, their webhooks are skipped unread instead of read and then skipped
        self.integration_user = (integration_user_id or "").lower() or None
        self.trust_integration_user = trust_integration_user
        self.source = source
        self.now = now or (lambda: datetime.now(UTC))
        self._rows: dict[str, dict[str, Any]] = {}
        self._attempt: dict[str, int] = {}  # record id -> the highest delivery attempt naming it
        self._first_seen: dict[str, datetime] = {}  # record id -> earliest notice observed
        self._customers: dict[str, int] = {}  # order id -> Brightpearl contact id
        self._waiting_customer: dict[str, tuple[str, str]] = {}  # order id -> (kind, GUID)
        self._no_primary: dict[str, str] = {}  # order id -> its account without a primary contact
        self._products: dict[str, int] = {}  # SKU -> Brightpearl product id
        self._sku_review: dict[str, SkuMatch] = {}  # SKU -> its candidates (never used unreviewed)
        self._links: dict[str, Link] = {}  # record id -> its link (read with the records)
        self.changes = OrderChanges(self)

    @classmethod
    def from_runtime(cls) -> Self:
        """This flow with the process's adapters, the mapping ORDER_MAPPING_PATH names and the
        OAuth installation's installedIntegrationInstanceId (none for private apps)."""
        from shared import runtime

        customers = runtime.settings().customers  # the integration user and whether it is trusted
        return cls(
            mapping=load_order_mapping(order_mapping_path()),
            installed_integration_instance_id=runtime.brightpearl().installed_integration_instance_id(),
            integration_user_id=customers.integration_user_id,
            trust_integration_user=customers.trust_integration_user,
            **cls.runtime_ports(),
        )

    # ------------------------------------------------------------------------------ reading
    def sort_notice(self, envelope: Envelope, record_id: str, batch: Batch, results: BatchResults) -> None:
        key = record_id.lower()
        self._attempt[key] = max(self._attempt.get(key, 0), envelope.attempt)
        seen = self._first_seen.get(key)
        if seen is None or envelope.notice.observed_at < seen:
            self._first_seen[key] = envelope.notice.observed_at
        if envelope.notice.operation == "deleted":
            results.set(
                record_id,
                RecordResult(
                    "skipped", None, f"Dataverse {envelope.notice.entity} {record_id} deleted: not synced"
                ),
            )
            return
        if integration_echo(envelope, self.integration_user, self.trust_integration_user):
            echo = RecordResult("skipped", "IntegrationEcho", "initiated by the integration user")
            results.set(record_id, echo)
            return
        super().sort_notice(envelope, record_id, batch, results)

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        """The orders named, then the orders of the order products named; reads both."""
        order_ids = [i.lower() for i in batch.changed.get("salesorder", [])]
        named_lines = batch.changed.get("salesorderdetail", [])
        for chunk, of_lines in odata.fit_chunks(named_lines, partial(odata.in_, "salesorderdetailid")):
            found: set[str] = set()
            for row in self.dv.query(
                "salesorderdetails", select=["salesorderdetailid", "_salesorderid_value"], filter=of_lines
            ):
                line_id, order_id = str(row.id).lower(), str(row.values["_salesorderid_value"]).lower()
                for named in chunk:
                    if named.lower() == line_id:
                        batch.derived.setdefault(named, []).append(order_id)
                        self._attempt[order_id] = max(self._attempt.get(order_id, 0), self._attempt[line_id])
                        found.add(named)
            for named in chunk:
                if named not in found:
                    results.set(
                        named,
                        RecordResult(
                            "skipped",
                            None,
                            f"Dataverse order product {named} no longer exists (order unknown)",
                        ),
                    )
        ids = list(dict.fromkeys([*order_ids, *(o for os_ in batch.derived.values() for o in os_)]))
        self._read_orders(ids)
        won, rows = read_opportunities(self.dv, self.mapping, batch.changed.get("opportunity", []), results)
        self._rows.update(rows)  # won opportunities (trigger.opportunity_won, orders_opportunity.py)
        return [*ids, *won]

    def _read_orders(self, ids: list[str]) -> None:
        self._rows = read_with_lines(self.dv, SALESORDERS, ids)

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        self._links = self.store.links.get_many(self.link_entity, "dataverse", ids) if ids else {}
        return self._rows

    def fetch_key(self, record_id: str) -> str:
        return record_id.lower()

    def skip(self, record_id: str, source: dict[str, Any], results: BatchResults) -> bool:
        """Orders the trigger setting does not select (a canceled order is never created);
        linked orders are not skipped (their changes are synced), unless they are copies of
        Brightpearl-born orders (order history: Brightpearl owns them)."""
        link = self._links.get(record_id) or self._links.get(record_id.lower())
        if brightpearl_owned(source, link):
            results.set(record_id, owned_result(record_id, source, link))
            return True
        if self._linked_id(record_id, source):
            return False
        if is_opportunity(source):
            return skip_opportunity(record_id, source, results)
        state = int(source.get("statecode") or 0)
        when = self.mapping.trigger.when
        why = None
        if state == 2:
            why = "is canceled"
        elif when == "submit" and state == 0:
            why = "is not submitted yet (trigger.when: submit)"
        elif when == "flag" and not source.get(self.mapping.trigger.flag_column):
            why = f"does not have {self.mapping.trigger.flag_column} set (trigger.when: flag)"
        elif when == "create" and state == 0 and not source.get("lines"):
            # created before its lines: the lines' own notices bring it back
            why = "has no order products yet (trigger.when: create)"
        if why is None:
            return False
        results.set(record_id, RecordResult("skipped", None, f"Dataverse order {record_id} {why}"))
        return True

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[Order]:
        if is_opportunity(record):
            return order_from_opportunity(record)
        return order_from_dataverse(record, record.get("lines") or [])

    def content_hash(self, value: Order, system: System) -> str:
        return order_hash(value)

    # ------------------------------------------------------------------------------ matching
    def _linked_id(self, record_id: str, source: dict[str, Any]) -> str | None:
        """The Brightpearl order id of an order created already: its link, else bpi_brightpearlid."""
        link = self._links.get(record_id) or self._links.get(record_id.lower())
        bp_id = link.id_in("brightpearl") if link is not None and link.is_linked else None
        return bp_id or source.get("bpi_brightpearlid") or None

    def match(self, records: list[Record], results: BatchResults) -> None:
        """Linked orders go to the changes (orders_changes.py); for the others resolve
        customers; products for both, in bulk."""
        todo: list[Record] = []
        linked: list[Record] = []
        for r in records:
            bp_id = self._linked_id(r.source_id, r.source)
            if bp_id:
                r.target_id, r.matched_by = str(bp_id), "link"
                r.link = self._links.get(r.source_id) or self._links.get(r.source_id.lower())
                linked.append(r)
            else:
                todo.append(r)
        self.changes.match(linked, results)
        todo = one_order_per_sale(self.dv, self.store.links, self.mapping, todo, results)
        self._resolve_customers([r.read.value for r in todo])
        edited = [r for r in linked if not results.has(r.source_id) and not is_canceled(r)]
        self._resolve_products([r.read.value for r in [*todo, *edited]])

    def _resolve_customers(self, orders: list[Order]) -> None:
        """Brightpearl contact id per order: a contact through its link, an account through its
        primary contact's link."""
        contact_of: dict[str, str] = {}  # order id -> Dataverse contact id
        accounts = {o.customer.id for o in orders if o.customer is not None and o.customer.kind == "account"}
        primary: dict[str, str] = {}
        for of_accounts in odata.in_chunks("accountid", sorted(accounts)):
            for row in self.dv.query(
                "accounts", select=["accountid", "_primarycontactid_value"], filter=of_accounts
            ):
                if row.values.get("_primarycontactid_value"):
                    primary[str(row.id).lower()] = str(row.values["_primarycontactid_value"]).lower()
        for order in orders:
            customer = order.customer
            if customer is None:
                continue
            contact = customer.id if customer.kind == "contact" else primary.get(customer.id)
            if contact:
                contact_of[order.order_id] = contact
            else:  # no Brightpearl customer can stand for it: waiting would not help
                self._no_primary[order.order_id] = customer.id
        links = self.store.links.get_many("customer", "dataverse", sorted(set(contact_of.values())))
        for order in orders:
            contact = contact_of.get(order.order_id)
            link = links.get(contact) if contact else None
            bp_id = link.id_in("brightpearl") if link is not None and link.is_linked else None
            if bp_id:
                self._customers[order.order_id] = int(bp_id)
            elif order.customer is not None and order.order_id not in self._no_primary:
                self._waiting_customer[order.order_id] = (order.customer.kind, order.customer.id)

    def _resolve_products(self, orders: list[Order]) -> None:
        """Brightpearl product id per SKU: by the line's product link, else by SKU matching
        (shared/mapping/sku_match.py: exact, channel affixes, normalised, identifiers); a SKU
        with only fuzzy or ambiguous candidates is kept for review (`_sku_review`)."""
        product_ids = sorted({line.product_id for o in orders for line in o.lines if line.product_id})
        links = self.store.links.get_many("product", "dataverse", product_ids) if product_ids else {}
        for order in orders:
            for line in order.lines:
                link = links.get(line.product_id) if line.product_id else None
                bp_id = link.id_in("brightpearl") if link is not None and link.is_linked else None
                if line.sku and bp_id:
                    self._products[line.sku] = int(bp_id)
        pending = {
            line.sku: ProductQuery(line.sku, line.product_id)
            for o in orders
            for line in o.lines
            if line.sku and line.sku not in self._products
        }
        if not pending:
            return
        settings = self.mapping.sku_matching
        matcher = SkuMatcher(self.bp, settings, channel=self.mapping.brightpearl.channel_id)
        for sku, found in matcher.match(list(pending.values()), enrich=self._with_details).items():
            if found.product_id is not None:
                self._products[sku] = found.product_id
            elif found.needs_review:
                self._sku_review[sku] = found

    def _with_details(self, queries: list[ProductQuery]) -> list[ProductQuery]:
        """The queries with their Dynamics products' names and identifier columns (one `In`
        query per ~500 products, as many as the URL takes)."""
        settings = self.mapping.sku_matching
        rows: dict[str, dict[str, Any]] = {}
        products = sorted({q.product_id for q in queries if q.product_id})
        for of_products in odata.in_chunks("productid", products):
            for row in self.dv.query(
                "products", select=["productid", *dynamics_columns(settings)], filter=of_products
            ):
                rows[str(row.id).lower()] = dict(row.values)
        return [with_details(q, rows.get(q.product_id or ""), settings) for q in queries]

    # ------------------------------------------------------------------------------ deciding
    def decide_write(self, record: Record, current: Order | None) -> OrderDecision:
        order = record.read.value
        if record.matched_by == "link" and is_canceled(record):
            return OrderDecision(desired_hash=order_hash(order))  # the changes cancel it
        issues = [*record.read.issues, *order_issues(order, currencies=self.currencies)]
        if any(i.fatal for i in issues):
            return OrderDecision(issues)
        unknown = order_issues(order, known_sku=lambda sku: sku in self._products)
        unknown = [i for i in unknown if i.code is IssueCode.UNKNOWN_SKU]
        if unknown:
            return OrderDecision(unknown)
        customer = self._customers.get(order.order_id)
        if customer is None:
            return OrderDecision([self._customer_issue(order)])
        body, problems = sales_order_body(
            order,
            self.mapping,
            customer_id=customer,
            product_ids=self._products,
            installed_integration_instance_id=self.instance_id,
        )
        if body is None:
            return OrderDecision(problems)
        body = with_opportunity_ref(body, record.source, self.mapping)
        return OrderDecision(issues, order_hash(order), SalesOrderCreate.model_validate(body))

    def _customer_issue(self, order: Order) -> QualityIssue:
        kind, guid = self._waiting_customer.get(order.order_id) or ("customer", "(none)")
        account = self._no_primary.get(order.order_id)
        if account is not None:
            description = (
                f"{order.reference}: its customer, Dataverse account {account}, has no primary contact "
                "(primarycontactid), which becomes the Brightpearl customer; set the account's Primary "
                "Contact in Dynamics, then resubmit"
            )
        elif order.customer is not None:
            description = (
                f"{order.reference}: its customer (Dataverse {kind} {guid}) has no Brightpearl contact"
            )
        else:
            description = f"{order.reference} has no customer (customerid)"
        return QualityIssue(
            code=IssueCode.CUSTOMER_NOT_SYNCED,
            severity=Severity.FATAL,
            system="dataverse",
            record_id=order.order_id,
            field="customerid",
            description=description,
        )

    def decide(self, records: list[Record], results: BatchResults) -> None:
        """The engine's decision, then the waits: an unlinked customer (bounded by
        customer_wait.attempts) and, with unknown_sku.action wait, an unknown SKU."""
        super().decide(records, results)
        waiting: dict[str, tuple[str, str]] = {}
        bound = self.mapping.customer_wait.attempts
        for r in records:
            result = results.by_id.get(r.source_id)
            if result is None or result.kind != "fatal":
                continue
            attempt = self._attempt.get(r.source_id.lower(), 1)
            if result.reason == IssueCode.CUSTOMER_NOT_SYNCED and r.source_id in self._waiting_customer:
                if attempt <= bound:
                    kind, guid = self._waiting_customer[r.source_id]
                    if attempt == 1:
                        waiting[guid] = (kind, guid)
                    results.set(
                        r.source_id,
                        RecordResult(
                            "transient",
                            "CustomerNotLinked",
                            f"Dataverse order {r.source_id}: its customer (Dataverse {kind} {guid}) is "
                            f"not in Brightpearl yet; retry {attempt} of {bound}",
                            retry_after=CUSTOMER_RETRY_SECONDS,
                        ),
                    )
                else:
                    results.set(
                        r.source_id,
                        RecordResult(
                            "fatal",
                            result.reason,
                            f"{result.description} after {bound} retries",
                            stamp=result.stamp,
                        ),
                    )
            elif result.reason == IssueCode.UNKNOWN_SKU and (review := self._sku_review_of(r)):
                results.set(r.source_id, review)
            elif result.reason == IssueCode.UNKNOWN_SKU and self._still_waiting_for_sku(r.source_id):
                results.set(
                    r.source_id,
                    RecordResult(
                        "transient",
                        "SkuNotInBrightpearl",
                        f"{result.description} (waiting unknown_sku.wait_minutes)",
                        retry_after=SKU_RETRY_SECONDS,
                    ),
                )
        self._ask_for_customers(list(waiting.values()))

    def _sku_review_of(self, r: Record) -> RecordResult | None:
        """needs-review SkuNeedsReview when every unmatched SKU of the order has candidates (a
        fuzzy or ambiguous match is never used unreviewed); None when one has none (UnknownSku)."""
        order = r.read.value
        unmatched = [line for line in order.lines if line.sku and line.sku not in self._products]
        if not unmatched or any(line.sku not in self._sku_review for line in unmatched):
            return None
        parts = [
            f"line {order.lines.index(line) + 1}, Dynamics product {line.product_id} (SKU {line.sku!r}): "
            f"{review_text(self._sku_review[line.sku or ''])}"
            for line in unmatched
        ]
        return RecordResult(
            "needs-review",
            SKU_NEEDS_REVIEW,
            f"{order.reference} (Dataverse order {r.source_id}): no Brightpearl product matches for sure; "
            f"{'; '.join(parts)}. Accept one: syncctl review accept-sku <Dynamics product id> "
            "<Brightpearl product id> (remembered as a product link; the order syncs again), or fix the "
            "product number in Dynamics, then syncctl review accept",
        )

    def _still_waiting_for_sku(self, record_id: str) -> bool:
        settings = self.mapping.unknown_sku
        if settings.action != "wait":
            return False
        seen = self._first_seen.get(record_id.lower())
        return seen is not None and (self.now() - seen).total_seconds() < settings.wait_minutes * 60

    def _ask_for_customers(self, customers: list[tuple[str, str]]) -> None:
        """Notices for the customers flow to sync the orders' customers (once, on first sight)."""
        notices = []
        for kind in ("contact", "account"):
            notices += notices_in_chunks(
                "dataverse",
                kind,
                [guid for k, guid in customers if k == kind],
                per_notice=100,
                version=f"order-customer:{self.now().isoformat()}",
                source=self.source,
                origin="poller",
                observed_at=self.now(),
            )
        if notices:
            try:
                self.publish(notices)
            except Exception as exc:  # the order retries anyway; the customer's own notices remain
                log.warning("asking for %d customer(s) failed: %s", len(notices), type(exc).__name__)

    # ------------------------------------------------------------------------------ writing
    def write(self, records: list[Record], results: BatchResults) -> None:
        linked = [r for r in records if r.matched_by == "link"]
        self.changes.write(linked, results)
        created: list[Record] = []
        for r in self.to_write(records, results):
            try:
                claim = self.store.links.claim(self.link_entity, "dataverse", r.source_id, "brightpearl")
            except ClaimTaken as taken:
                results.set(r.source_id, waiting_on_claim(f"Dataverse order {r.source_id}", taken))
                continue
            r.claim = claim
            if not self._create(r, claim, results):
                continue
            if is_opportunity(r.source):  # an opportunity has no bpi_brightpearlid: its link holds the id
                self.settle(r, results)
            else:
                created.append(r)
        self._write_back(created, results)
        self._restore_ids(linked, results)

    def _create(self, r: Record, claim: Claim, results: BatchResults) -> bool:
        """Look the order up by externalRef when an earlier attempt may have POSTed it, else
        POST it once; link it. True when linked.

        Before the POST the claim's progress is marked (`POSTING`); a claim that carries that
        mark (released after a failure, or taken over after its holder died or lost the POST's
        answer) is looked up first. A fresh claim cannot have a Brightpearl order behind it, so
        the usual path is one Brightpearl call per order.
        """
        assert r.decision is not None
        try:
            existing: list[int] = []
            if claim.takeover or claim.progress.get(POSTING):
                existing = self.bp.find_order_ids_by_external_ref(r.source_id, self.instance_id)
            if existing:
                r.target_id, r.matched_by = str(min(existing)), "recovered"
                log.warning(
                    "Dataverse order %s: found Brightpearl order %s made by an earlier attempt",
                    r.source_id,
                    r.target_id,
                )
            else:
                claim = r.claim = self.store.links.save_progress(claim, {**claim.progress, POSTING: True})
                r.target_id, r.matched_by = str(self.bp.create_sales_order(r.decision.payload)), None
        except bp_errors.BrightpearlAmbiguousWrite as exc:
            # it may have been made: the claim stays pending; the retry looks it up first
            results.error(r.source_id, exc, f"creation of Dataverse order {r.source_id} in Brightpearl")
            return False
        except Exception as exc:
            self._release(claim, r.source_id)
            refused = currency_refused(r.read.value, exc)
            if refused is not None:  # the atomic POST made nothing: the order's own reason
                results.set(r.source_id, refused)
            else:
                results.error(r.source_id, exc, f"creation of Dataverse order {r.source_id} in Brightpearl")
            return False
        try:
            self.store.links.complete_claim(
                claim, r.target_id, source_hash=r.decision.desired_hash, target_hash=r.decision.desired_hash
            )
        except StoreConflictError as exc:
            log.warning("claim of Dataverse order %s was taken over: %s", r.source_id, exc)
        return True

    def _write_back(self, created: list[Record], results: BatchResults) -> None:
        """bpi_brightpearlid on the Dynamics orders, then settle them: Active orders in one
        UpdateMultiple; Submitted ones, which Dynamics does not edit (reference §10.5), in one
        $batch change set that reopens each, writes the id and puts its state back."""
        if not created:
            return
        failed = self._write_ids(created)
        for r in created:
            retry = self._id_not_written(r, failed[r.source_id], "created") if r.source_id in failed else None
            if retry is not None:
                results.set(r.source_id, retry)
            else:
                self.settle(r, results, NOT_WRITTEN if r.source_id in failed else "")

    def _restore_ids(self, linked: list[Record], results: BatchResults) -> None:
        """bpi_brightpearlid of linked orders whose Dynamics row lacks it (an earlier write-back
        failed) and that synced or were unchanged now: written, else retried again."""
        missing = [
            r
            for r in linked
            if r.target_id
            and not r.source.get("bpi_brightpearlid")
            and not is_opportunity(r.source)
            and results.by_id.get(r.source_id, RecordResult("fatal")).kind in ("synced", "unchanged")
        ]
        failed = self._write_ids(missing)
        for r in missing:
            done = results.by_id[r.source_id]
            retry = self._id_not_written(r, failed[r.source_id], "linked") if r.source_id in failed else None
            if retry is not None:
                results.set(r.source_id, retry)
            elif r.source_id not in failed:
                note = f"{done.description} (bpi_brightpearlid {r.target_id} written back)"
                results.set(r.source_id, RecordResult("synced", None, note, target_id=r.target_id))

    def _id_not_written(self, r: Record, exc: BaseException, what: str) -> RecordResult | None:
        """A retry when the bpi_brightpearlid write failed for a passing reason (Dataverse
        throttled or unavailable): the retry finds the order linked (no second Brightpearl
        order) and writes the id again. None for a lasting failure (the link holds the id)."""
        verdict = classify(exc)
        if verdict is None or not verdict.transient:
            return None
        return RecordResult(
            "transient",
            verdict.reason,
            f"Dataverse order {r.source_id}: Brightpearl order {r.target_id} {what}, but writing "
            f"bpi_brightpearlid back failed ({type(exc).__name__}); retried",
            target_id=r.target_id,
            retry_after=verdict.retry_after,
        )

    def _write_ids(self, created: list[Record]) -> dict[str, BaseException]:
        """Write bpi_brightpearlid (each record's target_id); the error per source id it failed for."""
        failed: dict[str, BaseException] = {}
        if not created:
            return failed
        # Dynamics edits only Active orders, except for administrators (writeback.read_only_orders)
        direct = self.mapping.writeback.read_only_orders == "direct"
        active = [r for r in created if direct or int(r.source.get("statecode") or 0) == 0]
        closed = [r for r in created if not direct and int(r.source.get("statecode") or 0) != 0]
        if active:
            rows = [{"salesorderid": r.source_id, "bpi_brightpearlid": r.target_id} for r in active]
            try:
                outcome = self.dv.update_multiple("salesorders", rows)
                for o in outcome.outcomes:
                    if not o.ok:
                        failed[active[o.index].source_id] = o.error or RuntimeError("row refused")
            except Exception as exc:
                log.warning(
                    "writing bpi_brightpearlid of %d order(s) failed: %s", len(rows), type(exc).__name__
                )
                failed.update({r.source_id: exc for r in active})
        if closed:
            ops: list[BatchOperation] = []
            for r in closed:
                path = odata.record_path("salesorders", r.source_id)
                put_back = {"statecode": r.source.get("statecode"), "statuscode": r.source.get("statuscode")}
                ops += [
                    BatchOperation("PATCH", path, {"statecode": 0, "statuscode": 1}),
                    BatchOperation("PATCH", path, {"bpi_brightpearlid": r.target_id}),
                    BatchOperation("PATCH", path, put_back),
                ]
            try:
                answers = self.dv.execute_batch(ops, continue_on_error=False, change_set=True)
                refused = next((a for a in answers if not a.ok), None)
                if refused is not None:
                    failed.update({r.source_id: refused.error or RuntimeError("refused") for r in closed})
            except Exception as exc:
                log.warning(
                    "writing bpi_brightpearlid of %d order(s) failed: %s", len(closed), type(exc).__name__
                )
                failed.update({r.source_id: exc for r in closed})
        return failed

    def _release(self, claim: Claim, order_id: str) -> None:
        try:
            self.store.links.release_claim(claim)
        except Exception:  # an unreleased claim expires after LINK_CLAIM_TIMEOUT_SECONDS
            log.warning("releasing the claim of Dataverse order %s failed", order_id)


def currency_refused(order: Order, exc: BaseException) -> RecordResult | None:
    """CurrencyMissing when Brightpearl refused the sales-order POST over its currency (an ISO
    code the account lacks: its error names `currency`); None for any other failure. The
    account's currencies are not read beforehand (no documented currency list, reference §4.1)."""
    if not isinstance(exc, bp_errors.BrightpearlValidationError):
        return None
    messages = [str(e.get("message", "")) for e in exc.errors]
    if not any("currency" in m.lower() for m in messages):
        return None
    [issue] = [i for i in order_issues(order, currencies=()) if i.code is IssueCode.CURRENCY_MISSING]
    return RecordResult("fatal", issue.code, f"{issue.description} (Brightpearl: {'; '.join(messages)})")
