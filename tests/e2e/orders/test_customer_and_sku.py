"""An order's references not in Brightpearl yet, through the sandbox (issue 13, Build 2 and 5):

- a customer not synced yet (its own webhook lost): the orders flow asks the customers flow for
  it, the order waits (CustomerNotLinked) and then syncs, once, for that customer; an account
  customer the same way, through its primary contact;
- a customer that cannot be synced: after `customer_wait.attempts` retries the order is
  dead-lettered CustomerNotSynced naming the customer;
- a line whose SKU Brightpearl lacks: dead-lettered UnknownSku naming the SKU and the order
  number; once the product is in Brightpearl, `syncctl dlq resubmit --reason UnknownSku` brings
  the order through, exactly once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from shared.dataverse import odata
from shared.store import AuditResult
from tests.e2e.customers.test_operator_loop import cli
from tests.e2e.orders.conftest import OrderSandbox

__all__ = ["cli"]

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True)
def webhooks_delivered_again(orders_sandbox: OrderSandbox) -> Iterator[None]:
    """No injected webhook failure outlives its test (the Dataverse simulator is shared)."""
    yield
    orders_sandbox.dv.call("POST", "webhooks/fail", {"count": 0})


def lose_webhooks(box: OrderSandbox, count: int) -> None:
    """The next `count` Dataverse webhook deliveries fail (their notices never reach the app)."""
    box.dv.call("POST", "webhooks/fail", {"count": count})


def lost(box: OrderSandbox) -> set[tuple[str, str, str]]:
    """(entity, message, record id) of the webhook deliveries that failed."""
    deliveries = box.dv.call("GET", "webhooks/deliveries")["deliveries"]
    return {(d["entity"], d["message"], d["record_id"].lower()) for d in deliveries if not d["ok"]}


def crm_create(box: OrderSandbox, entity_set: str, body: dict[str, object]) -> str:
    out = box.dv.crm("POST", entity_set, body)
    return odata.entity_id_from_url(out["headers"]["OData-EntityId"])


def test_an_order_of_a_customer_not_synced_yet_waits_for_it_and_syncs_once(
    orders_sandbox: OrderSandbox,
) -> None:
    box = orders_sandbox
    lose_webhooks(box, 1)
    contact = box.add_contact("Nora", "Newcomer", sync=False)  # its Create notice is lost
    box.dv.call("POST", "webhooks/drain", {"timeout": 20})
    assert lost(box) == {("contact", "Create", contact.lower())}
    assert box.bp_contact_of(contact) is None

    order = box.raise_order([("MUG-1", 1)], customer=contact)
    box.work(rounds=20)

    bp_contact = box.bp_contact_of(contact)
    assert bp_contact, "the orders flow did not have the customer synced"
    created = box.bp_order_of(order)  # exactly one
    assert created["parties"]["customer"]["contactId"] == bp_contact
    assert len(box.bp_orders()) == 1
    assert (AuditResult.SYNCED, None) in box.audited(order)
    assert box.dead_lettered() == []


def test_an_order_of_an_account_syncs_through_its_primary_contact(orders_sandbox: OrderSandbox) -> None:
    box = orders_sandbox
    lose_webhooks(box, 2)  # the account's and the contact's Create (primarycontactid is not watched)
    account = crm_create(box, "accounts", {"name": f"Acme {uuid.uuid4().hex[:6]}"})
    contact = crm_create(
        box,
        "contacts",
        {
            "firstname": "Pat",
            "lastname": "Purchaser",
            "emailaddress1": f"pat.{uuid.uuid4().hex[:8]}@example.com",
            "parentcustomerid_account@odata.bind": f"/accounts({account})",
        },
    )
    box.dv.crm("PATCH", f"accounts({account})", {"primarycontactid@odata.bind": f"/contacts({contact})"})
    box.dv.call("POST", "webhooks/drain", {"timeout": 20})
    assert {(e, m) for e, m, _ in lost(box)} == {("account", "Create"), ("contact", "Create")}
    assert box.bp_contact_of(contact) is None

    order = box.raise_order(
        [("TEE-1", 2)],
        submit=False,
        **{"customerid_account@odata.bind": f"/accounts({account})"},
    )
    box.submit(order)
    box.work(rounds=20)

    bp_contact = box.bp_contact_of(contact)
    assert bp_contact, "the account's primary contact was not synced"
    created = box.bp_order_of(order)
    assert created["parties"]["customer"]["contactId"] == bp_contact
    assert box.dead_lettered() == []


def test_a_customer_that_cannot_be_synced_dead_letters_the_order_naming_it(
    orders_sandbox: OrderSandbox,
) -> None:
    """A contact without a last name (the customers flow dead-letters it MissingLastName): the
    order retries customer_wait.attempts (6) times, then CustomerNotSynced names the contact."""
    box = orders_sandbox
    lose_webhooks(box, 1)
    nameless = crm_create(box, "contacts", {"firstname": "Only", "emailaddress1": "only.first@example.com"})
    box.dv.call("POST", "webhooks/drain", {"timeout": 20})

    order = box.raise_order([("CAP-1", 1)], customer=nameless)
    box.work(rounds=40)

    assert box.bp_orders() == []
    [dead] = box.dead_lettered()
    assert json.loads(dead.body)["data"]["ids"] == [order]
    assert dead.dead_letter_reason == "CustomerNotSynced"
    description = dead.dead_letter_error_description
    assert f"contact {nameless}" in description and box.dv_order(order)["ordernumber"] in description
    assert "after 6 retries" in description
    [customer_dead] = box.dead_letters("dataverse-changes", "customers-to-brightpearl")
    assert customer_dead.dead_letter_reason == "MissingLastName"


def test_an_unknown_sku_is_dead_lettered_then_resubmitted_once_the_product_exists(
    orders_sandbox: OrderSandbox,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    box = orders_sandbox
    box.add_product("NEW-1", Decimal("15.00"), in_brightpearl=False)
    order = box.raise_order([("MUG-1", 1), ("NEW-1", 2)])
    other = box.raise_order([("TEE-1", 1)])
    box.work()

    assert box.bp_orders_of(order) == [] and len(box.bp_orders_of(other)) == 1
    [dead] = box.dead_lettered()
    assert dead.dead_letter_reason == "UnknownSku"
    description = dead.dead_letter_error_description
    assert "'NEW-1'" in description and box.dv_order(order)["ordernumber"] in description
    assert "syncctl dlq resubmit --reason UnknownSku" in description

    box.add_brightpearl_product("NEW-1")  # the catalogue now has it
    box.work()
    assert box.bp_orders_of(order) == []  # nothing happens by itself: it waits for the operator
    out = cli("dlq", "resubmit", "--reason", "UnknownSku", "--wait", "0")
    assert "resubmitted" in out
    box.work()

    created = box.bp_order_of(order)  # exactly one
    products = {int(r["productId"]) for r in created["orderRows"].values()}
    assert products == {box.shop.bp_products["MUG-1"], box.shop.bp_products["NEW-1"]}
    assert box.dead_lettered() == []
    assert box.dv_order(order)["bpi_brightpearlid"] == str(created["id"])
    cli("dlq", "resubmit", "--reason", "UnknownSku", "--wait", "0")  # nothing left to resubmit
    box.work()
    assert len(box.bp_orders_of(order)) == 1 and len(box.bp_orders()) == 2


def test_an_account_without_a_primary_contact_is_dead_lettered_at_once_naming_the_fix(
    orders_sandbox: OrderSandbox,
) -> None:
    """Brightpearl's customer of an account's order is the account's primary contact; an account
    without one cannot become a customer however long the order waits."""
    box = orders_sandbox
    account = crm_create(box, "accounts", {"name": f"Nobody Ltd {uuid.uuid4().hex[:6]}"})
    order = box.raise_order([("CAP-1", 1)], **{"customerid_account@odata.bind": f"/accounts({account})"})
    box.work()

    assert box.bp_orders() == []
    [dead] = box.dead_lettered()
    assert dead.dead_letter_reason == "CustomerNotSynced"
    description = dead.dead_letter_error_description
    assert f"account {account}" in description and box.dv_order(order)["ordernumber"] in description
    assert "primary contact" in description.lower() and "retries" not in description
