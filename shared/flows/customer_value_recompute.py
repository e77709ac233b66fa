"""The nightly customer value recompute: a bounded share of the customers recomputed from their
Brightpearl orders and credits, rotating through all of them; drift is reported and fixed
(issue 14 item 4).

Each run (CUSTOMER_VALUE_RECOMPUTE_SCHEDULE) takes the next `recompute.share_per_night` of the
linked customers (at least `min_customers`, at most `max_customers`) in Brightpearl id order after
the cursor `customer-value-recompute`, wrapping round, so every customer is recomputed every
1 / share nights. Per customer: `order-search?contactId=` (one request), the orders and credits in
bulk (≤ 200 a GET), their contributions by the same rules as the flow (a transaction already held
for the same currency and date keeps its recorded rate), then:

- store drift: contributions missing, extra (an order moved to another customer, or deleted) or
  different from what the incremental updates left: the stored ones are replaced;
- Dynamics drift: a bpi_* column of the contact that differs from the recomputed figures.

Both are findings (kind `drift`) of a report kept like the reconcile reports (shared/reconcile/
report.py, cursor `reconcile-report|customer-value`; `syncctl customer-value last` prints it),
logged (ids, column names and the two figures: no personal data), and fixed at once: the
drifted customers are written through the flush. A customer whose rate is missing is skipped and
counted (`scanned.rate_missing`); the next round retries it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

from shared.flows.customer_value_config import CustomerValueMapping, load_customer_value_mapping
from shared.flows.customer_value_flush import LINK_ENTITY, CustomerValueFlush, columns_of, differing
from shared.flows.customer_value_spec import CUSTOMER_VALUE, RECOMPUTE_CURSOR
from shared.flows.customer_value_store import Contribution, CustomerValue, CustomerValueStore, store_for
from shared.flows.customer_value_to_dataverse import KINDS, ORDER_GET, ContributionRules, transaction_key
from shared.money.errors import BaseCurrencyUnknown, RateMissing
from shared.money.rates import RateSource, rate_source
from shared.reconcile.report import Finding, ReconcileReport, save_report
from shared.store.cursors import keep_latest
from shared.sync.ports import BrightpearlPort, DataversePort, StateStorePort
from shared.telemetry import get_logger

log = get_logger("flows.customer_value")
MAX_FINDINGS = 500


class CustomerValueRecompute:
    """Recompute a share of the customers from Brightpearl; report and fix drift."""

    def __init__(
        self,
        *,
        brightpearl: BrightpearlPort,
        dataverse: DataversePort,
        store: StateStorePort,
        mapping: CustomerValueMapping,
        rates: RateSource,
        values: CustomerValueStore | None = None,
        clock: Any = None,
    ) -> None:
        self.bp = brightpearl
        self.dv = dataverse
        self.store = store
        self.mapping = mapping
        self.rules = ContributionRules(mapping, rates)
        self.values = values if values is not None else store_for(store)
        self.flush = CustomerValueFlush(dataverse=dataverse, store=store, mapping=mapping, values=self.values)
        self.clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_runtime(cls) -> Self:
        from shared import runtime
        from shared.flows.customer_value_to_dataverse import customer_value_mapping_path

        mapping = load_customer_value_mapping(customer_value_mapping_path())
        bp, dv = runtime.brightpearl(), runtime.dataverse()
        kind = mapping.rate_source or runtime.settings().customer_value.rate_source
        return cls(
            brightpearl=bp,
            dataverse=dv,
            store=runtime.state_store(),
            mapping=mapping,
            rates=rate_source(kind, brightpearl=bp, dataverse=dv),
            clock=runtime.clock,
        )

    # ------------------------------------------------------------------------------ choosing
    def tonight(self) -> tuple[list[str], int]:
        """The customers of this run (after the cursor, wrapping round) and how many are linked."""
        links: Any = self.store.links  # LinkStore / MemoryLinks: every link of an entity
        linked = sorted(
            {
                int(link.id_in("brightpearl") or 0)
                for link in links.all_links(LINK_ENTITY)
                if link.is_linked and link.id_in("brightpearl")
            }
        )
        if not linked:
            return [], 0
        settings = self.mapping.recompute
        share = math.ceil(len(linked) * settings.share_per_night)
        n = min(len(linked), max(settings.min_customers, min(settings.max_customers, share)))
        cursor = self.store.cursors.get(RECOMPUTE_CURSOR)
        after = int(cursor.value) if cursor is not None and cursor.value.isdigit() else 0
        start = next((i for i, c in enumerate(linked) if c > after), 0)
        chosen = [linked[(start + i) % len(linked)] for i in range(n)]
        return [str(c) for c in chosen], len(linked)

    # ------------------------------------------------------------------------------ running
    def poll(self) -> ReconcileReport:
        customers, linked = self.tonight()
        report = self.run(customers)
        report.scanned["linked"] = linked
        if customers:
            keep_latest(
                self.store.cursors, RECOMPUTE_CURSOR, customers[-1], "the customer value recompute cursor"
            )
        save_report(self.store.cursors, report)
        return report

    def run(self, customers: Sequence[str]) -> ReconcileReport:
        """Recompute these customers: report drift, fix it, write the drifted ones now."""
        report = ReconcileReport(
            entity=CUSTOMER_VALUE.name,
            run_id=uuid.uuid4().hex[:12],
            started_at=self.clock(),
            heal=True,
            scanned={"customers": len(customers), "transactions": 0, "rate_missing": 0},
        )
        orders_of = self._orders_of(customers)
        report.scanned["transactions"] = sum(len(v) for v in orders_of.values())
        links = self.store.links.get_many(LINK_ENTITY, "brightpearl", customers)
        contact_of = {
            c: str(link.id_in("dataverse")).lower()
            for c, link in links.items()
            if link.is_linked and link.id_in("dataverse")
        }
        held_columns = self.flush.read_figures("contacts", "contactid", list(contact_of.values()))
        drifted: list[str] = []
        for customer in customers:
            try:
                computed = self._recompute(customer, orders_of.get(customer, []))
            except (RateMissing, BaseCurrencyUnknown) as exc:
                report.scanned["rate_missing"] += 1
                log.warning("customer value recompute skipped customer %s: %s", customer, exc)
                continue
            held = self.values.contributions(customer)
            store_fields = self._store_drift(customer, held, computed)
            value = CustomerValue.of(computed.values())
            contact = contact_of.get(customer)
            dynamics: dict[str, Any] = {}
            current = held_columns.get(contact or "")
            if current is not None and self.mapping.contact_columns:
                dynamics = differing(current, columns_of(value))
                for column, wanted in dynamics.items():
                    log.warning(
                        "customer value drift: customer %s contact %s %s held %s, recomputed %s",
                        customer,
                        contact,
                        column,
                        current.get(column),
                        wanted,
                    )
            if store_fields:
                stale = [t for t in held if t not in computed]
                changed = [c for t, c in computed.items() if held.get(t) != c]
                self.values.put(customer, changed, stale)
                report.add(
                    Finding(
                        kind="drift",
                        brightpearl_id=customer,
                        dataverse_id=contact,
                        changed_in=["brightpearl"],
                        fields=store_fields,
                    ),
                    max_items=MAX_FINDINGS,
                )
            if dynamics:
                report.add(
                    Finding(
                        kind="drift",
                        brightpearl_id=customer,
                        dataverse_id=contact,
                        changed_in=["dataverse"],
                        fields=sorted(dynamics),
                    ),
                    max_items=MAX_FINDINGS,
                )
            if store_fields or dynamics:
                drifted.append(customer)
        if drifted:
            self.values.mark_dirty(drifted)
            flushed = self.flush.write(drifted)
            report.scanned["contacts_written"] = flushed.contacts_written
            report.scanned["accounts_written"] = flushed.accounts_written
        report.finished_at = self.clock()
        log.info("customer value recompute: %d customers, %s", len(customers), report.summary())
        return report

    def _orders_of(self, customers: Sequence[str]) -> dict[str, list[Mapping[str, Any]]]:
        """Every sales order and credit of these customers (order-search by contact, then GETs)."""
        ids: list[int] = []
        for customer in customers:
            for row in self.bp.search_orders(columns=["orderId"], contactId=int(customer)):
                ids.append(int(row["orderId"]))
        out: dict[str, list[Mapping[str, Any]]] = {c: [] for c in customers}
        for order in self.bp.get_by_ids(ORDER_GET, sorted(set(ids)), limit=200):
            customer = str(((order.get("parties") or {}).get("customer") or {}).get("contactId") or "")
            if customer in out and str(order.get("orderTypeCode")) in KINDS:
                out[customer].append(order)
        return out

    def _recompute(self, customer: str, orders: Sequence[Mapping[str, Any]]) -> dict[str, Contribution]:
        keys = {transaction_key(KINDS[str(o["orderTypeCode"])], str(o["id"])): o for o in orders}
        held = self.values.contributions_of(customer, list(keys)) if keys else {}
        return {key: self.rules.of(order, held.get(key)) for key, order in keys.items()}

    @staticmethod
    def _store_drift(
        customer: str, held: Mapping[str, Contribution], computed: Mapping[str, Contribution]
    ) -> list[str]:
        """The transactions whose stored contribution is missing, extra or different."""
        names = sorted(set(held) | set(computed))
        out = [t for t in names if held.get(t) != computed.get(t)]
        for txn in out:
            log.warning(
                "customer value drift: customer %s transaction %s stored %s, recomputed %s",
                customer,
                txn,
                held[txn].net if txn in held else "nothing",
                computed[txn].net if txn in computed else "nothing",
            )
        return out
