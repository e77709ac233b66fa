"""Customer value on the fakes: what each Brightpearl order or credit contributes, the figures,
the mapping's validation, and the flow + flush writing each customer once (issue 14 items 4-5)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared.events import ChangeNotice, Envelope
from shared.flows.customer_value_config import parse_customer_value_mapping
from shared.flows.customer_value_flush import CustomerValueFlush
from shared.flows.customer_value_store import CustomerValue, MemoryCustomerValueStore
from shared.flows.customer_value_to_dataverse import ContributionRules, CustomerValueToDataverse
from shared.mapping.config import MappingError
from shared.money.errors import BaseCurrencyMismatch, RateMissing
from shared.money.rates import FixedRates
from shared.sync.fakes import FakeDataverse, MemoryStateStore

RATES = FixedRates("GBP", {"USD": [(date(2026, 1, 1), Decimal("1.25")), (date(2026, 3, 1), Decimal("1.30"))]})


def order(
    oid: int,
    net: str,
    *,
    kind: str = "SO",
    currency: str = "GBP",
    status: str = "Invoiced",
    invoiced: bool = True,
    paid: str = "PAID",
    placed: str = "2026-02-01",
    customer: int = 7,
) -> dict[str, Any]:
    return {
        "id": oid,
        "orderTypeCode": kind,
        "orderStatus": {"name": status},
        "orderPaymentStatus": paid,
        "placedOn": f"{placed}T10:00:00.000+01:00",
        "currency": {"orderCurrencyCode": currency},
        "totalValue": {"net": net},
        "parties": {"customer": {"contactId": customer}},
        "invoices": [{"invoiceReference": f"SI-{oid}", "taxDate": placed}] if invoiced else [],
    }


def rules(**mapping: Any) -> ContributionRules:
    return ContributionRules(parse_customer_value_mapping(mapping), RATES)


def test_an_invoiced_order_counts_its_net_converted_at_its_dates_rate():
    c = rules().of(order(1, "100.00", currency="USD", placed="2026-03-02"))
    assert (c.counted, c.net, c.rate, c.rate_on, c.placed) == (
        True,
        Decimal("76.92"),
        Decimal("0.769230769231"),
        date(2026, 3, 2),
        date(2026, 3, 2),
    )


def test_orders_not_invoiced_or_cancelled_count_nothing_and_need_no_rate():
    assert not rules().of(order(1, "10.00", currency="JPY", invoiced=False)).counted
    assert not rules().of(order(2, "10.00", status="Cancelled")).counted
    assert (
        rules(invoiced_statuses=["Completed"])
        .of(order(3, "10.00", status="Completed", invoiced=False))
        .counted
    )


def test_a_credit_subtracts_and_is_open_until_refunded_or_closed():
    open_credit = rules().of(order(5, "30.00", kind="SC", paid="NOT_PAID", invoiced=False))
    refunded = rules().of(order(5, "30.00", kind="SC", paid="PAID", invoiced=False))
    closed = rules(closed_return_statuses=["Closed"]).of(
        order(5, "30.00", kind="SC", status="Closed", paid="")
    )
    assert (open_credit.open_return, refunded.open_return, closed.open_return) == (True, False, False)
    value = CustomerValue.of([rules().of(order(1, "100.00")), open_credit])
    assert (value.lifetime_value, value.order_count, value.average_order_value, value.open_returns) == (
        Decimal("70.00"),
        1,
        Decimal("100.00"),
        1,
    )


def test_a_missing_rate_names_the_pair_and_the_date():
    with pytest.raises(RateMissing, match=r"USD->GBP on 2025-12-31"):
        rules().of(order(1, "10.00", currency="USD", placed="2025-12-31"))


def test_a_held_contribution_keeps_its_recorded_rate_for_the_same_currency_and_date():
    first = rules().of(order(1, "100.00", currency="USD", placed="2026-02-01"))
    moved = ContributionRules(
        parse_customer_value_mapping({}), FixedRates("GBP", {"USD": [(date(2026, 1, 1), Decimal(2))]})
    )
    assert moved.of(order(1, "100.00", currency="USD", placed="2026-02-01"), first).net == Decimal("80.00")
    assert moved.of(order(1, "100.00", currency="USD", placed="2026-02-02"), first).net == Decimal("50.00")


def test_the_mapping_names_each_problem_by_its_path():
    with pytest.raises(MappingError) as bad:
        parse_customer_value_mapping(
            {
                "base_currency": "gbp",
                "recompute": {"share_per_night": 0},
                "rate_source": "ecb",
                "invoiced_statuses": ["Cancelled"],
            }
        )
    text = str(bad.value)
    assert "base_currency:" in text and "recompute.share_per_night:" in text and "rate_source:" in text
    with pytest.raises(
        MappingError, match="invoiced_statuses: \\['Cancelled'\\] also listed in cancelled_statuses"
    ):
        parse_customer_value_mapping({"invoiced_statuses": ["Cancelled"]})


class Orders:
    def __init__(self, *orders: dict[str, Any]) -> None:
        self.orders = {o["id"]: o for o in orders}

    def get_by_ids(self, path: str, ids: Any, **_: Any) -> list[Any]:
        return [self.orders[int(i)] for i in ids if int(i) in self.orders]


def notice(*ids: int) -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity="order",
            ids=tuple(map(str, ids)),
            observed_at=datetime(2026, 7, 1, tzinfo=UTC),
            source="/bp/test",
            origin="test",
        )
    )


def test_many_events_for_one_customer_are_written_once_and_only_what_differs():
    dv, state, values = FakeDataverse(), MemoryStateStore(), MemoryCustomerValueStore()
    contact = dv.add("contacts", {"lastname": "Once"})
    state.links.link("customer", "brightpearl", "7", "dataverse", contact)
    book = Orders(*(order(i, "10.00") for i in range(1, 21)))
    mapping = parse_customer_value_mapping({})
    ports: Any = {"brightpearl": book, "dataverse": dv, "store": state, "publish": lambda e: None}
    flow = CustomerValueToDataverse(mapping=mapping, rates=RATES, values=values, **ports)
    flush = CustomerValueFlush(dataverse=dv, store=state, mapping=mapping, values=values, check_base=False)
    for i in range(1, 21):
        flow.handle([notice(i), notice(i)])  # twenty events, each twice
    assert flush.poll().contacts_written == 1
    assert dv.tables["contacts"][contact]["bpi_lifetimevalue"] == 200.0
    assert dv.tables["contacts"][contact]["bpi_ordercount"] == 20
    flow.handle([notice(*range(1, 21))])  # all again: nothing changed, nothing marked
    assert flush.poll().customers == 0
    values.mark_dirty(["7"])  # marked with nothing to change: read, not written
    assert flush.poll().contacts_written == 0


class EuroOrganization(FakeDataverse):
    """A Dynamics organization whose base currency is EUR."""

    def query(self, entity_set: str, **kwargs: Any) -> Any:
        from shared.dataverse.models import Record

        if entity_set == "organizations":
            return iter([Record("organizations", "o", None, {"_basecurrencyid_value": "eur"})])
        if entity_set == "transactioncurrencies":
            rows = [("eur", "EUR", 1.0), ("gbp", "GBP", 0.85)]
            return iter(
                Record(
                    entity_set, i, None, {"transactioncurrencyid": i, "isocurrencycode": c, "exchangerate": r}
                )
                for i, c, r in rows
            )
        return super().query(entity_set, **kwargs)


def test_nothing_is_written_when_the_organizations_base_currency_is_not_the_mappings():
    dv, state, values = EuroOrganization(), MemoryStateStore(), MemoryCustomerValueStore()
    contact = dv.add("contacts", {"lastname": "Euro"})
    state.links.link("customer", "brightpearl", "7", "dataverse", contact)
    values.put("7", [rules().of(order(1, "10.00"))])
    values.mark_dirty(["7"])
    flush = CustomerValueFlush(
        dataverse=dv, store=state, mapping=parse_customer_value_mapping({}), values=values
    )
    with pytest.raises(BaseCurrencyMismatch, match="base currency is GBP, but the organization's is EUR"):
        flush.poll()
    assert "bpi_lifetimevalue" not in dv.tables["contacts"][contact]
    assert values.dirty() == {"7": "1"}  # still to write once the mapping is fixed
