"""FakeBrightpearl's sales orders answer as the Brightpearl simulator does through the real client
(issue 13), so the fast tests in tests/unit/flows/orders stay honest: a created sales order is
found by its externalRef, alone or with its installedIntegrationInstanceId (the pair is
Brightpearl's unique key, reference §6.2), and a second order under the same pair is refused
(the simulator's default) or, with `return-existing`, answered with the first one's id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from shared.brightpearl.errors import BrightpearlValidationError
from shared.brightpearl.models import SalesOrderCreate
from shared.sync.fakes import FakeBrightpearl
from shared.sync.ports import BrightpearlPort
from tests.contract.test_fakes_agree import bp_server, brightpearl, new_customer, unique

__all__ = ["bp_server", "brightpearl"]


def sales_order(customer: int, external_ref: str, instance: int | None) -> SalesOrderCreate:
    body: dict[str, Any] = {
        "customer": {"id": customer},
        "ref": "ORD-01001",
        "externalRef": external_ref,
        "currency": {"code": "GBP"},
        "rows": [{"name": "Gift wrap", "quantity": 1, "taxCode": "T20", "net": "2.50", "tax": "0.50"}],
    }
    if instance is not None:
        body["installedIntegrationInstanceId"] = instance
    return SalesOrderCreate.model_validate(body)


@pytest.fixture
def duplicates_return_existing(
    brightpearl: BrightpearlPort, request: pytest.FixtureRequest
) -> Iterator[None]:
    """Both sides answer a duplicate externalRef + instance with the existing order's id."""
    if isinstance(brightpearl, FakeBrightpearl):
        brightpearl.duplicate_external_ref = "return-existing"
        yield
        return
    server: BrightpearlServer = request.getfixturevalue("bp_server")
    server.simulator.configure(duplicate_external_ref="return-existing")
    try:
        yield
    finally:
        server.simulator.configure(duplicate_external_ref="error")


def test_sales_orders_are_found_by_external_ref_and_integration_instance(
    brightpearl: BrightpearlPort,
) -> None:
    customer = new_customer(brightpearl, f"orders.{unique()}@example.org")
    ref, other = f"so-{unique()}", f"so-{unique()}"
    first = brightpearl.create_sales_order(sales_order(customer, ref, 1))
    second = brightpearl.create_sales_order(sales_order(customer, ref, 2))
    bare = brightpearl.create_sales_order(sales_order(customer, ref, None))

    assert len({first, second, bare}) == 3
    assert brightpearl.find_order_ids_by_external_ref(ref) == sorted([first, second, bare])
    assert brightpearl.find_order_ids_by_external_ref(ref, 1) == [first]
    assert brightpearl.find_order_ids_by_external_ref(ref, 2) == [second]
    assert brightpearl.find_order_ids_by_external_ref(ref, 0) == [bare]  # none is stored as 0
    assert brightpearl.find_order_ids_by_external_ref(ref, 3) == []
    assert brightpearl.find_order_ids_by_external_ref(other) == []
    assert brightpearl.find_order_ids_by_external_ref(ref[:-1]) == []  # exact, not a prefix


def test_a_second_sales_order_under_the_same_external_ref_and_instance_is_refused(
    brightpearl: BrightpearlPort,
) -> None:
    customer = new_customer(brightpearl, f"orders.{unique()}@example.org")
    ref = f"so-{unique()}"
    first = brightpearl.create_sales_order(sales_order(customer, ref, 1))
    bare = brightpearl.create_sales_order(sales_order(customer, ref, None))

    with pytest.raises(
        BrightpearlValidationError, match=f"externalRef '{ref}' is already used by order {first}"
    ):
        brightpearl.create_sales_order(sales_order(customer, ref, 1))
    with pytest.raises(
        BrightpearlValidationError, match=f"externalRef '{ref}' is already used by order {bare}"
    ):
        brightpearl.create_sales_order(sales_order(customer, ref, None))

    assert brightpearl.find_order_ids_by_external_ref(ref) == sorted([first, bare])  # nothing more made


@pytest.mark.usefixtures("duplicates_return_existing")
def test_with_return_existing_a_duplicate_answers_the_first_orders_id(brightpearl: BrightpearlPort) -> None:
    customer = new_customer(brightpearl, f"orders.{unique()}@example.org")
    ref = f"so-{unique()}"
    first = brightpearl.create_sales_order(sales_order(customer, ref, 1))

    assert brightpearl.create_sales_order(sales_order(customer, ref, 1)) == first
    other = brightpearl.create_sales_order(sales_order(customer, ref, 2))  # another instance's own
    assert other != first
    assert brightpearl.find_order_ids_by_external_ref(ref) == sorted([first, other])
