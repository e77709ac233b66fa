"""The engine's default id check: a Brightpearl notice id must be a positive integer (the
products, stock, prices and customer flows all rely on it), a Dataverse one a GUID
(products-to-brightpearl); a malformed one is dead-lettered naming the record kind, without a
call to either system."""

from __future__ import annotations

from typing import Any

import pytest

from shared.events import ChangeNotice, Envelope, now_utc
from shared.outcomes import DeadLetter
from shared.sync.engine import RecordSync
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore
from shared.sync.spec import FlowSpec


def flow(source: str) -> RecordSync[Any]:
    class Bare(RecordSync[Any]):
        spec = FlowSpec(
            name="things-to-x",
            source=source,  # type: ignore[arg-type]
            target="dataverse" if source == "brightpearl" else "brightpearl",
            source_entities=("thing",),
            flow="tests:Bare",
            record="thing",
            stamp_field="updatedOn",
        )

    fakes: dict[str, Any] = {"brightpearl": FakeBrightpearl(), "dataverse": FakeDataverse()}
    return Bare(**fakes, store=MemoryStateStore(), publish=list)


@pytest.mark.parametrize("record_id", ["abc", "0", "-3", "1.5", ""])
def test_a_brightpearl_id_that_is_not_a_positive_integer_is_named(record_id: str) -> None:
    assert flow("brightpearl").id_problem("thing", record_id) == (
        f"Brightpearl thing id {record_id!r} is not a positive integer"
    )


def test_a_brightpearl_number_and_a_dataverse_guid_pass() -> None:
    assert flow("brightpearl").id_problem("thing", "1207") is None
    assert flow("dataverse").id_problem("thing", "0f8fad5b-d9cb-469f-a165-70867728950e") is None


def test_a_dataverse_id_that_is_not_a_guid_is_named() -> None:
    assert (
        flow("dataverse").id_problem("thing", "not-a-guid") == "Dataverse thing id 'not-a-guid' is not a GUID"
    )


def test_the_products_stock_and_prices_flows_dead_letter_a_malformed_id_without_a_call() -> None:
    from shared.flows.prices_to_dataverse import PricesToDataverse
    from shared.flows.products_to_dataverse import ProductsToDataverse
    from shared.flows.stock_to_dataverse import StockToDataverse
    from shared.mapping.prices import load_price_settings
    from shared.mapping.products_config import load_product_mapping
    from shared.mapping.stock import load_stock_settings

    bp, dv = FakeBrightpearl(), FakeDataverse()
    ports: dict[str, Any] = {"brightpearl": bp, "dataverse": dv, "store": MemoryStateStore(), "publish": list}
    flows: list[RecordSync[Any]] = [
        ProductsToDataverse(mapping=load_product_mapping(), **ports),
        StockToDataverse(settings=load_stock_settings(), **ports),
        PricesToDataverse(settings=load_price_settings(), **ports),
    ]
    for target in flows:
        [entity] = target.spec.source_entities
        notice = ChangeNotice(
            system="brightpearl",
            entity=entity,
            ids=("abc",),
            operation="changed",
            source="/brightpearl/test",
            origin="poller",
            observed_at=now_utc(),
            version="v1",
        )
        [outcome] = target.handle([Envelope.wrap(notice)])
        assert isinstance(outcome, DeadLetter) and outcome.reason == "MalformedMessage", target.spec.name
        assert "Brightpearl product id 'abc' is not a positive integer" in outcome.description
    assert bp.calls == [] and dv.calls == []
