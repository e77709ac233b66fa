"""Flow customer-value-to-dataverse: Brightpearl orders and sales credits -> each customer's
stored contributions (issue 14 items 4 and 5); the flush (customer_value_flush.py) writes the
figures to the Dynamics contact and account.

Per batch of `order` notices (order webhooks, the order-search poller, the customer-payment
poller's notices for paid orders) and `sales-credit` notices (the sales-credit poller):

1. read the orders and credits in bulk (`GET /order-service/order/{ID-SET}`, ≤ 200 a call; a
   sales credit is an order of type SC, reference §6.4, §6.9);
2. per transaction, its contribution (customer_value_store.Contribution): an invoiced sales
   order (an invoice reference, or a status in `invoiced_statuses`) counts its net; a sales
   credit not cancelled counts its net against the value, and is an open return until refunded
   (payment status PAID) or closed by status; the net converts to the mapping's base currency at
   the rate of the transaction's date (invoice tax date, else placed date) from the rate source
   (shared/money/rates.py). A contribution already held for the same currency and date keeps the
   rate recorded with it. No rate: `RateMissing`, retried, then dead-lettered naming the pair
   and the date; never guessed;
3. replace the contributions that changed (a duplicate or a redelivered notice changes nothing)
   and mark their customers dirty: a customer touched by many events is written once per flush.

The audit row of each transaction says what it contributes and at which rate, e.g.
"Brightpearl order 12 -> customer 7: 100.00 USD = 78.74 GBP at 0.787401574803 (Brightpearl
exchange rates, 2026-02-01)".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self, Unpack

from shared.flows.customer_value_config import CustomerValueMapping, load_customer_value_mapping
from shared.flows.customer_value_spec import CREDIT_ENTITY, CUSTOMER_VALUE, TO_DATAVERSE
from shared.flows.customer_value_store import Contribution, CustomerValueStore, store_for
from shared.money.errors import BaseCurrencyUnknown, RateMissing
from shared.money.rates import RateSource, currency_code, quantize, rate_source, to_decimal
from shared.sync.engine import Batch, FlowPorts, RecordSync
from shared.sync.outcomes import BatchResults, RecordResult

ORDER_GET = "/order-service/order/{ids}"  # ≤ 200 a call (reference §6.4)
KINDS = {"SO": "order", "SC": "credit"}
NOT_A_SALE = "NotASalesTransaction"
NO_CUSTOMER = "NoCustomer"


def parse_day(value: Any) -> date | None:
    """The date of a Brightpearl date or time stamp ("2026-02-01", "2026-02-01T10:00:00+01:00")."""
    if not value:
        return None
    text = str(value)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return date.fromisoformat(text[:10])


def transaction_key(kind: str, record_id: str) -> str:
    return f"{kind}-{record_id}"


class ContributionRules:
    """What a Brightpearl order or credit contributes, by the mapping, converted by `rates`."""

    def __init__(self, mapping: CustomerValueMapping, rates: RateSource) -> None:
        self.mapping = mapping
        self.rates = rates

    def of(self, order: Mapping[str, Any], held: Contribution | None = None) -> Contribution:
        """The contribution of one order/credit (ValueError: unreadable; RateMissing: no rate)."""
        kind = KINDS[str(order.get("orderTypeCode"))]
        customer = str(((order.get("parties") or {}).get("customer") or {}).get("contactId") or "")
        status = str((order.get("orderStatus") or {}).get("name") or "")
        invoices = [i for i in order.get("invoices") or [] if (i or {}).get("invoiceReference")]
        cancelled = status in self.mapping.cancelled_statuses
        if kind == "order":
            counted = not cancelled and (bool(invoices) or status in self.mapping.invoiced_statuses)
        else:
            counted = not cancelled
        currency = currency_code(str((order.get("currency") or {}).get("orderCurrencyCode") or ""))
        amount = to_decimal((order.get("totalValue") or {}).get("net", "0"), "totalValue.net")
        placed = parse_day(order.get("placedOn")) or parse_day(order.get("createdOn"))
        on = (parse_day(invoices[0].get("taxDate")) if invoices else None) or placed
        if on is None:
            raise ValueError("the order has neither placedOn nor createdOn")
        base = self.mapping.base_currency
        net, rate, source = Decimal(0), Decimal(0), ""
        if counted:
            if held is not None and held.currency == currency and held.rate_on == on and held.rate:
                rate, source = held.rate, held.rate_source  # the recorded rate of that date stays
            else:
                rate, source = self.rates.rate(currency, base, on), self.rates.name
            net = quantize(amount * rate, self.rates.precision(base))
        refunded = str(order.get("orderPaymentStatus") or "") == "PAID"
        return Contribution(
            txn=transaction_key(kind, str(order.get("id"))),
            customer=customer,
            kind="order" if kind == "order" else "credit",
            counted=counted,
            net=net,
            amount=amount,
            currency=currency,
            rate=rate,
            rate_on=on,
            rate_source=source,
            placed=placed if kind == "order" else None,
            open_return=kind == "credit"
            and counted
            and not refunded
            and status not in self.mapping.closed_return_statuses,
        )


def describe(c: Contribution, label: str, base: str) -> str:
    """The audit text of a contribution: ids, amounts and the rate (no personal data)."""
    head = f"{label} -> customer {c.customer}: "
    if not c.counted:
        why = "not invoiced yet" if c.kind == "order" else "cancelled"
        return head + f"counts nothing ({why})"
    sign = "" if c.kind == "order" else "minus "
    text = f"{sign}{c.amount} {c.currency} = {c.net} {base}"
    if c.currency != base:
        text += f" at {c.rate} ({c.rate_source}, {c.rate_on.isoformat()})"
    if c.kind == "credit":
        text += ", open return" if c.open_return else ", return closed"
    return head + text


class CustomerValueToDataverse(RecordSync[Contribution]):
    """Brightpearl sales orders and credits -> contributions per customer (the flush writes)."""

    spec = TO_DATAVERSE
    records_per_pass = 1_000  # Brightpearl orders (about 20 KB each) read and written at a time
    link_entity = CUSTOMER_VALUE.link_entity

    def __init__(
        self,
        *,
        mapping: CustomerValueMapping,
        rates: RateSource,
        values: CustomerValueStore | None = None,
        **ports: Unpack[FlowPorts],
    ) -> None:
        super().__init__(**ports)
        self.mapping = mapping
        self.rules = ContributionRules(mapping, rates)
        self.values = values if values is not None else store_for(self.store)

    @classmethod
    def from_runtime(cls) -> Self:
        from shared import runtime

        mapping = load_customer_value_mapping(customer_value_mapping_path())
        ports = cls.runtime_ports()
        kind = mapping.rate_source or runtime.settings().customer_value.rate_source
        rates = rate_source(kind, brightpearl=ports["brightpearl"], dataverse=ports["dataverse"])
        return cls(mapping=mapping, rates=rates, **ports)

    @property
    def label(self) -> str:
        return "Brightpearl order"

    def expand(self, batch: Batch, results: BatchResults) -> list[str]:
        ids = [i for entity in ("order", CREDIT_ENTITY) for i in batch.changed.get(entity, [])]
        return list(dict.fromkeys(ids))

    def run_pass(self, batch: Batch, ids: list[str], results: BatchResults) -> None:
        """One pass of orders and credits (`records_per_pass`): read them, record each one's
        contribution on its customer, mark the customers dirty for the flush."""
        orders = {
            str(o.get("id")): o for o in self.bp.get_by_ids(ORDER_GET, [int(i) for i in ids], limit=200)
        }
        readable: dict[str, dict[str, Any]] = {}
        for record_id in ids:
            order = orders.get(record_id)
            if order is None:
                results.set(
                    record_id,
                    RecordResult(
                        "missing",
                        "BrightpearlRecordMissing",
                        f"Brightpearl order {record_id} no longer exists",
                    ),
                )
            elif str(order.get("orderTypeCode")) not in KINDS:
                results.set(
                    record_id,
                    RecordResult(
                        "skipped", NOT_A_SALE, f"Brightpearl order {record_id} is not a sales order or credit"
                    ),
                )
            elif not ((order.get("parties") or {}).get("customer") or {}).get("contactId"):
                results.set(
                    record_id,
                    RecordResult("skipped", NO_CUSTOMER, f"Brightpearl order {record_id} has no customer"),
                )
            else:
                readable[record_id] = order
        by_customer: dict[str, list[str]] = defaultdict(list)
        for record_id, order in readable.items():
            by_customer[str(order["parties"]["customer"]["contactId"])].append(record_id)
        dirty: list[str] = []
        for customer, record_ids in by_customer.items():
            kinds = {r: KINDS[str(readable[r]["orderTypeCode"])] for r in record_ids}
            held = self.values.contributions_of(customer, [transaction_key(kinds[r], r) for r in record_ids])
            changed: list[Contribution] = []
            for record_id in record_ids:
                self._contribute(record_id, readable[record_id], held, changed, results)
            if changed:
                self.values.put(customer, changed)
                dirty.append(customer)
        if dirty:
            self.values.mark_dirty(dirty)

    def _contribute(
        self,
        record_id: str,
        order: Mapping[str, Any],
        held: Mapping[str, Contribution],
        changed: list[Contribution],
        results: BatchResults,
    ) -> None:
        kind = KINDS[str(order["orderTypeCode"])]
        label = f"Brightpearl {'order' if kind == 'order' else 'sales credit'} {record_id}"
        before = held.get(transaction_key(kind, record_id))
        try:
            contribution = self.rules.of(order, before)
        except (RateMissing, BaseCurrencyUnknown) as exc:
            results.error(record_id, exc, label)
            return
        except (ValueError, KeyError) as exc:
            results.set(record_id, RecordResult("fatal", "BrightpearlProtocolError", f"{label}: {exc}"))
            return
        text = describe(contribution, label, self.mapping.base_currency)
        if before == contribution:
            results.set(
                record_id,
                RecordResult(
                    "unchanged", None, text + " (already recorded)", target_id=contribution.customer
                ),
            )
            return
        changed.append(contribution)
        results.set(
            record_id,
            RecordResult(
                "synced",
                None,
                text,
                target_id=contribution.customer,
                created=before is None,
                fields=("contribution",),
            ),
        )


def customer_value_mapping_path() -> Any:
    """The mapping file CUSTOMER_VALUE_MAPPING_PATH names (relative: the app root)."""
    from shared import runtime

    return runtime.app_file(runtime.settings().customer_value.mapping_path)
