"""The customer value flush: customers whose figures changed -> the Dynamics contact and its
parent account, each written once per run and only where a column differs (issue 14 item 4).

Every run (CUSTOMER_VALUE_FLUSH_SCHEDULE) takes the customers marked dirty by the flow
(customer_value_to_dataverse.py) or the nightly recompute, up to `limit` a run:

1. their links (`customer`: Brightpearl contact -> Dynamics contact); a customer not linked yet
   is left for the nightly recompute once it is (its contributions are kept);
2. their figures from the stored contributions (CustomerValue.of), and what their Dynamics
   contacts hold now (one `In` query per ~500 contacts, as many as the URL takes, with the
   parent account);
3. the accounts: the sum over every contact under each parent account touched (one query of
   those accounts' contacts, their links, their stored figures) against what the account holds;
4. one UpdateMultiple per table with only the rows and columns that differ, then the markers
   are cleared (conditionally: a customer marked again meanwhile is written again next run).

Dynamics' current values are what is compared, so an edit in Dynamics is put right at the next
flush of that customer, and nothing is written when nothing changed. Columns: bpi_lifetimevalue
and bpi_averageordervalue (Money, the base currency), bpi_ordercount and bpi_openreturns (Whole
number), bpi_lastpurchasedate (Date). No Brightpearl request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Self

from shared.dataverse import odata
from shared.flows.customer_value_config import CustomerValueMapping, load_customer_value_mapping
from shared.flows.customer_value_store import CustomerValue, CustomerValueStore, store_for
from shared.money.errors import BaseCurrencyMismatch
from shared.money.rates import DataverseRates
from shared.sync.ports import DataversePort, StateStorePort
from shared.telemetry import get_logger

log = get_logger("flows.customer_value")

LINK_ENTITY = "customer"
COLUMNS = (
    "bpi_lifetimevalue",
    "bpi_lastpurchasedate",
    "bpi_ordercount",
    "bpi_averageordervalue",
    "bpi_openreturns",
)


def columns_of(value: CustomerValue) -> dict[str, Any]:
    """The Dynamics columns of a customer's figures (JSON values)."""
    return {
        "bpi_lifetimevalue": float(value.lifetime_value),
        "bpi_lastpurchasedate": value.last_purchase.isoformat() if value.last_purchase else None,
        "bpi_ordercount": value.order_count,
        "bpi_averageordervalue": float(value.average_order_value)
        if value.average_order_value is not None
        else None,
        "bpi_openreturns": value.open_returns,
    }


def _same(column: str, held: Any, wanted: Any) -> bool:
    if held is None or wanted is None:
        return held is None and wanted is None
    if column == "bpi_lastpurchasedate":
        return str(held)[:10] == str(wanted)[:10]
    if column in ("bpi_lifetimevalue", "bpi_averageordervalue"):
        return Decimal(str(held)).quantize(Decimal("0.01")) == Decimal(str(wanted)).quantize(Decimal("0.01"))
    return int(held) == int(wanted)


def differing(held: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of `wanted` whose value Dynamics does not hold."""
    return {c: v for c, v in wanted.items() if not _same(c, held.get(c), v)}


@dataclass
class FlushReport:
    customers: int = 0
    contacts_written: int = 0
    accounts_written: int = 0
    not_linked: int = 0
    failed: list[str] = field(default_factory=list)


class CustomerValueFlush:
    """Write the dirty customers' figures to Dynamics (see the module docstring)."""

    def __init__(
        self,
        *,
        dataverse: DataversePort,
        store: StateStorePort,
        mapping: CustomerValueMapping,
        values: CustomerValueStore | None = None,
        limit: int = 5000,
        check_base: bool = True,
    ) -> None:
        self.dv = dataverse
        self.store = store
        self.mapping = mapping
        self.values = values if values is not None else store_for(store)
        self.limit = limit
        self.check_base = check_base  # the organization's base currency is the mapping's (once)

    @classmethod
    def from_runtime(cls) -> Self:
        from shared import runtime
        from shared.flows.customer_value_to_dataverse import customer_value_mapping_path

        mapping = load_customer_value_mapping(customer_value_mapping_path())
        return cls(dataverse=runtime.dataverse(), store=runtime.state_store(), mapping=mapping)

    def poll(self) -> FlushReport:
        markers = self.values.dirty(self.limit)
        if not markers:
            return FlushReport()
        report = self.write(list(markers))
        self.values.clear_dirty({c: v for c, v in markers.items() if c not in report.failed})
        log.info(
            "customer value flush: %d customers, %d contacts and %d accounts written, %d not linked",
            report.customers,
            report.contacts_written,
            report.accounts_written,
            report.not_linked,
        )
        return report

    def write(self, customers: Sequence[str]) -> FlushReport:
        """Write these customers' figures (and their accounts') where Dynamics differs."""
        if self.check_base:
            actual = DataverseRates(self.dv).base_currency()
            if actual != self.mapping.base_currency:
                raise BaseCurrencyMismatch(self.mapping.base_currency, actual, self.mapping.source)
            self.check_base = False
        report = FlushReport(customers=len(customers))
        links = self.store.links.get_many(LINK_ENTITY, "brightpearl", customers)
        contact_of = {
            c: str(link.id_in("dataverse")).lower()
            for c, link in links.items()
            if link.is_linked and link.id_in("dataverse")
        }
        report.not_linked = len(customers) - len(contact_of)
        places = 2
        values = {c: CustomerValue.of(self.values.contributions(c).values(), places) for c in contact_of}
        held = self.read_figures(
            "contacts", "contactid", list(contact_of.values()), extra=("_parentcustomerid_value",)
        )
        if self.mapping.contact_columns:
            rows = []
            for customer, contact in contact_of.items():
                current = held.get(contact)
                if current is None:
                    continue  # the contact is gone from Dynamics: nothing to write
                changes = differing(current, columns_of(values[customer]))
                if changes:
                    rows.append({"contactid": contact, **changes})
            failed = self._update("contacts", "contactid", rows)
            report.contacts_written = len(rows) - len(failed)
            customer_of = {contact: customer for customer, contact in contact_of.items()}
            report.failed.extend(customer_of[contact] for contact in failed)
        if self.mapping.account_columns:
            # a parent that is a contact, not an account, is simply not found among the accounts
            accounts = {
                str(row.get("_parentcustomerid_value")).lower()
                for row in held.values()
                if row.get("_parentcustomerid_value")
            }
            report.accounts_written = self.write_accounts(sorted(accounts))
        return report

    def write_accounts(self, accounts: Sequence[str]) -> int:
        """Each account's figures: the total over all its contacts' stored figures."""
        if not accounts:
            return 0
        members: dict[str, list[str]] = {a: [] for a in accounts}
        for under in odata.in_chunks("_parentcustomerid_value", accounts):
            for row in self.dv.query(
                "contacts", select=["contactid", "_parentcustomerid_value"], filter=under
            ):
                account = str(row.get("_parentcustomerid_value") or "").lower()
                if account in members:
                    members[account].append(str(row.get("contactid")).lower())
        contacts = [c for cs in members.values() for c in cs]
        links = self.store.links.get_many(LINK_ENTITY, "dataverse", contacts)
        customer_of = {
            c.lower(): str(link.id_in("brightpearl")) for c, link in links.items() if link.is_linked
        }
        figures: dict[str, CustomerValue] = {}
        for customer in set(customer_of.values()):
            figures[customer] = CustomerValue.of(self.values.contributions(customer).values())
        held = self.read_figures("accounts", "accountid", list(accounts))
        rows = []
        for account, contact_ids in members.items():
            total = CustomerValue.total(figures[customer_of[c]] for c in contact_ids if c in customer_of)
            current = held.get(account)
            if current is None:
                continue
            changes = differing(current, columns_of(total))
            if changes:
                rows.append({"accountid": account, **changes})
        failed = self._update("accounts", "accountid", rows)
        return len(rows) - len(failed)

    def read_figures(
        self, entity_set: str, key: str, ids: Sequence[str], extra: Iterable[str] = ()
    ) -> dict[str, Mapping[str, Any]]:
        """What Dynamics holds of the figures (and `extra` columns) per record id, as many ids a query as
        the URL takes."""
        out: dict[str, Mapping[str, Any]] = {}
        for of_ids in odata.in_chunks(key, ids):
            for row in self.dv.query(entity_set, select=[key, *COLUMNS, *extra], filter=of_ids):
                out[str(row.get(key)).lower()] = row.values
        return out

    def _update(self, entity_set: str, key: str, rows: list[dict[str, Any]]) -> set[str]:
        """UpdateMultiple of `rows`; the ids of the rows Dynamics refused (logged, retried next run)."""
        if not rows:
            return set()
        answer = self.dv.update_multiple(entity_set, rows)
        failed: set[str] = set()
        for row, outcome in zip(rows, answer.outcomes, strict=True):
            if not outcome.ok:
                log.warning("customer value not written to %s %s: %s", entity_set, row[key], outcome.error)
                failed.add(str(row[key]))
        return failed
