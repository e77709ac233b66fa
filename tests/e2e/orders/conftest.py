"""The whole sandbox for the orders flows: Dynamics sales orders raised by a CRM user reach the
local Functions host through the Dataverse webhook steps `syncctl webhooks register` adds, and
Brightpearl's order webhooks come back the same way; Azurite tables, the local bus and
function_app.py on a fake clock (tests/e2e/customers/conftest.py).

The shop: a seeded Dynamics catalogue (a unit group, GBP and EUR, the "Retail GBP" price list)
with products that exist in Brightpearl under the same SKU (as after a catalogue sync), and a
Dynamics contact the customers flow has synced to Brightpearl. Orders are raised as a CRM user
raises them (`/_sandbox/crm`): the order, its lines, then submit (statecode 1). The mapping is
mappings/orders.yaml, or a copy with edits (`order_mapping`) through ORDER_MAPPING_PATH; the
product mapping names the seeded catalogue (tests/e2e/products), as the catalogue flows run beside.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox import catalogue_solution
from sandbox.catalogue_solution import CatalogueRefs
from sandbox.host import LocalHost
from shared.brightpearl.webhook_registration import DEFAULT_EVENTS, sync_brightpearl_webhooks
from shared.dataverse import odata
from shared.dataverse.webhook_registration import entity_steps, sync_dataverse_webhooks
from shared.store import AuditEntry, AuditResult
from tests.e2e.customers.conftest import (
    BP_TOPIC,
    DV_TOPIC,
    NEVER,
    ROOT,
    Sandbox,
    bp_server,
    dv_server,
    sandbox,
)
from tests.e2e.products.conftest import BASE_UNIT, UNIT_GROUP, product_mapping

__all__ = ["bp_server", "dv_server", "sandbox"]

TO_BP, TO_DV = "orders-to-brightpearl", "orders-to-dataverse"
PRICE_LIST = "Retail GBP"
SUBMITTED = 1
SKUS = {"MUG-1": Decimal("12.50"), "TEE-1": Decimal("20.00"), "CAP-1": Decimal("8.00")}


def order_mapping(folder: Path, *edits: tuple[str, str], name: str = "orders.yaml") -> Path:
    """A copy of mappings/orders.yaml (and its status file) with `(old, new)` text edits."""
    text = (ROOT / "mappings" / "orders.yaml").read_text()
    for old, new in edits:
        assert old in text, f"mappings/orders.yaml changed: {old!r} not found"
        text = text.replace(old, new)
    (folder / "order_status.yaml").write_text((ROOT / "mappings" / "order_status.yaml").read_text())
    path = folder / name
    path.write_text(text)
    return path


@dataclass
class Shop:
    refs: CatalogueRefs
    products: dict[str, str] = field(default_factory=dict)  # SKU -> Dynamics productid
    bp_products: dict[str, int] = field(default_factory=dict)  # SKU -> Brightpearl product id
    customer: str = ""  # Dynamics contactid, synced to Brightpearl
    bp_customer: int = 0


@dataclass
class OrderSandbox(Sandbox):
    """The customers' whole sandbox seen from the orders flows."""

    shop: Shop = field(default_factory=lambda: Shop(CatalogueRefs("", "")))

    @classmethod
    def of(cls, box: Sandbox) -> OrderSandbox:
        return cls(**{f.name: getattr(box, f.name) for f in fields(Sandbox)})

    # -- the shop ------------------------------------------------------------------------------
    def add_product(self, sku: str, price: Decimal, *, in_brightpearl: bool = True) -> str:
        """A product in Dynamics (priced in the Retail GBP list) and, unless told otherwise, in
        Brightpearl under the same SKU; the Dynamics productid."""
        refs = self.shop.refs
        product = self.dvc.create(
            "products",
            {
                "name": f"Product {sku}",
                "productnumber": sku,
                "quantitydecimal": 0,
                "producttypecode": 1,
                "defaultuomscheduleid@odata.bind": f"/uomschedules({refs.unit_group})",
                "defaultuomid@odata.bind": f"/uoms({refs.base_unit})",
            },
        )
        self.dvc.create(
            "productpricelevels",
            {
                "pricelevelid@odata.bind": f"/pricelevels({refs.price_lists[PRICE_LIST]})",
                "productid@odata.bind": f"/products({product})",
                "uomid@odata.bind": f"/uoms({refs.base_unit})",
                "pricingmethodcode": 1,
                "amount": float(price),
            },
        )
        self.shop.products[sku] = product
        if in_brightpearl:
            self.add_brightpearl_product(sku)
        return product

    def add_brightpearl_product(self, sku: str) -> int:
        body = {
            "brandId": 1,
            "identity": {"sku": sku},
            "salesChannels": [{"salesChannelName": "Brightpearl", "productName": f"Product {sku}"}],
            "stock": {"stockTracked": True},
        }
        product_id = int(self.bp.request("POST", "/product-service/product/", json=body).response)
        self.shop.bp_products[sku] = product_id
        return product_id

    def add_contact(self, first: str = "Ada", last: str = "Buyer", *, sync: bool = True) -> str:
        """A Dynamics contact raised by a CRM user; with `sync`, worked off until the customers
        flow has linked it to a Brightpearl contact."""
        email = f"{first.lower()}.{uuid.uuid4().hex[:8]}@example.com"
        out = self.dv.crm("POST", "contacts", {"firstname": first, "lastname": last, "emailaddress1": email})
        contact = odata.entity_id_from_url(out["headers"]["OData-EntityId"])
        if sync:
            self.work()
            assert self.bp_contact_of(contact), f"contact {contact} was not synced to Brightpearl"
        return contact

    def bp_contact_of(self, contact: str) -> int | None:
        link = self.store.links.get("customer", "dataverse", contact.lower())
        bp_id = link.id_in("brightpearl") if link is not None and link.is_linked else None
        return int(bp_id) if bp_id else None

    # -- raising orders, as a CRM user ----------------------------------------------------------
    def raise_order(
        self,
        lines: list[tuple[str, int]] | None = None,
        *,
        customer: str | None = None,
        submit: bool = True,
        write_ins: list[tuple[str, Decimal, int]] = (),  # type: ignore[assignment]
        **header: Any,
    ) -> str:
        """A Dynamics order of `lines` (SKU, quantity) at the price list's prices (and write-in
        lines (description, price, quantity)), raised and (by default) submitted; its salesorderid."""
        refs = self.shop.refs
        body = {
            "name": "Web order",
            "customerid_contact@odata.bind": f"/contacts({customer or self.shop.customer})",
            "pricelevelid@odata.bind": f"/pricelevels({refs.price_lists[PRICE_LIST]})",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({refs.currencies['GBP']})",
            **header,
        }
        out = self.dv.crm("POST", "salesorders", body)
        order = odata.entity_id_from_url(out["headers"]["OData-EntityId"])
        for sku, quantity in lines if lines is not None else [("MUG-1", 2), ("TEE-1", 1)]:
            self.add_line(order, sku, quantity)
        for description, price, quantity in write_ins:
            self.dv.crm(
                "POST",
                "salesorderdetails",
                {
                    "salesorderid@odata.bind": f"/salesorders({order})",
                    "isproductoverridden": True,
                    "productdescription": description,
                    "priceperunit": float(price),
                    "quantity": quantity,
                },
            )
        if submit:
            self.submit(order)
        return order

    def add_line(self, order: str, sku: str, quantity: int, **extra: Any) -> str:
        out = self.dv.crm(
            "POST",
            "salesorderdetails",
            {
                "salesorderid@odata.bind": f"/salesorders({order})",
                "productid@odata.bind": f"/products({self.shop.products[sku]})",
                "uomid@odata.bind": f"/uoms({self.shop.refs.base_unit})",
                "quantity": quantity,
                **extra,
            },
        )
        return odata.entity_id_from_url(out["headers"]["OData-EntityId"])

    def submit(self, order: str) -> None:
        self.dv.crm("PATCH", f"salesorders({order})", {"statecode": SUBMITTED})

    # -- driving ---------------------------------------------------------------------------------
    def work(self, rounds: int = 8, timeout: float = 90.0) -> None:
        """Deliver both systems' webhooks and work off what they bring (and any retry copy due on
        the fake clock) until a round changes nothing."""
        for _ in range(rounds):
            before = (self.bp_writes(), self.dv.writes())
            self.dv.call("POST", "webhooks/drain", {"timeout": 20})
            deadline = time.monotonic() + timeout
            while not self.bp_sim.dispatcher.idle():
                if time.monotonic() > deadline:
                    raise AssertionError("Brightpearl webhooks still undelivered")
                time.sleep(0.02)
            self.host.wait_idle(timeout=timeout)
            if self.scheduled():
                self.clock.advance(61)
                self.host.wait_idle(timeout=timeout)
                continue
            if not self.active() and (self.bp_writes(), self.dv.writes()) == before:
                return

    def active(self) -> int:
        subs = ((DV_TOPIC, TO_BP), (BP_TOPIC, TO_DV), (DV_TOPIC, "customers-to-brightpearl"))
        return sum(self.bus.counts(t, s).active for t, s in subs)

    def scheduled(self) -> int:
        subs = ((DV_TOPIC, TO_BP), (BP_TOPIC, TO_DV), (DV_TOPIC, "customers-to-brightpearl"))
        return sum(self.bus.counts(t, s).scheduled for t, s in subs)

    def start_host(self) -> None:
        """A new local host in place of the stopped one (`host.stop()`), on the same port (the
        webhooks still reach it), bus, store and clock, as a new instance of the Function App."""
        self.host = LocalHost(
            "function_app",
            settings=self.values,
            bus=self.bus,
            port=self.host.port,
            clock=self.clock,
            project_root=ROOT,
            poll_interval=0.02,
        ).start()

    # -- looking ---------------------------------------------------------------------------------
    def bp_orders(self) -> list[dict[str, Any]]:
        """Brightpearl's sales orders (SO), oldest first."""
        with self.bp_sim.state.lock:
            orders = [dict(o) for o in self.bp_sim.state.orders.values() if o["orderTypeCode"] == "SO"]
        return sorted(orders, key=lambda o: o["id"])

    def bp_orders_of(self, salesorder: str) -> list[dict[str, Any]]:
        """The Brightpearl orders whose externalRef is the Dynamics order's id."""
        return [o for o in self.bp_orders() if o.get("externalRef", "").lower() == salesorder.lower()]

    def bp_order_of(self, salesorder: str) -> dict[str, Any]:
        [order] = self.bp_orders_of(salesorder)
        return order

    def dv_order(self, salesorder: str) -> dict[str, Any]:
        rows = [r for r in self.dv.rows("salesorder") if r["salesorderid"].lower() == salesorder.lower()]
        assert rows, f"no Dynamics order {salesorder}"
        return rows[0]

    def dv_lines(self, salesorder: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.dv.rows("salesorderdetail")
            if str(_lookup_id(r.get("_salesorderid_value") or r.get("salesorderid"))).lower()
            == salesorder.lower()
        ]

    def audit(self, salesorder: str, flow: str = TO_BP) -> list[AuditEntry]:
        entries = self.store.audit.for_record("order", "dataverse", salesorder.lower())
        return [e for e in entries if e.flow == flow]

    def audited(self, salesorder: str, flow: str = TO_BP) -> list[tuple[AuditResult, str | None]]:
        return [(e.result, e.reason_code) for e in self.audit(salesorder, flow)]

    def dead_lettered(self, flow: str = TO_BP) -> list[Any]:
        topic = DV_TOPIC if flow == TO_BP else BP_TOPIC
        return self.dead_letters(topic, flow)


def register_dataverse_webhooks(box: Sandbox, ingress_url: str) -> None:
    """`syncctl webhooks register` of the Dataverse steps, delivering to `ingress_url`."""
    sync_dataverse_webhooks(
        box.dvc,
        ingress_url=ingress_url,
        function_key=box.values["LOCAL_FUNCTION_KEY"],
        secret=box.values["DATAVERSE_WEBHOOK_SECRET"],
        steps=entity_steps(box.values),
        dry_run=False,
    )


def register_webhooks(box: Sandbox) -> None:
    """`syncctl webhooks register` for both systems against the host's ingress."""
    register_dataverse_webhooks(box, f"{box.host.api_url}/webhooks/dataverse")
    sync_brightpearl_webhooks(
        box.bp,
        ingress_url=f"{box.host.api_url}/webhooks/brightpearl",
        function_key=box.values["LOCAL_FUNCTION_KEY"],
        secret=box.values["BRIGHTPEARL_WEBHOOK_SECRET"],
        events=list(DEFAULT_EVENTS),
        dry_run=False,
    )


@pytest.fixture
def sandbox_settings(tmp_path: Path) -> dict[str, str]:
    """The shipped order mapping; timers run only when a test runs them. A test module overrides
    this fixture to use `order_mapping(tmp_path, edits...)`."""
    return {
        "ORDER_MAPPING_PATH": str(order_mapping(tmp_path)),
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "ORDERS_DATAVERSE_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_POLL_SCHEDULE": NEVER,
        "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE": NEVER,
    }


@pytest.fixture
def orders_sandbox(sandbox: Sandbox, dv_server: Any) -> Iterator[OrderSandbox]:
    box = OrderSandbox.of(sandbox)
    box.bp_sim.configure(webhook_batch_seconds=0.05)
    # the catalogue the product mapping names: the products flow (wired beside) keeps to it
    box.shop.refs = catalogue_solution.seed_simulator(
        dv_server.simulator, unit_group=UNIT_GROUP, base_unit=BASE_UNIT
    )
    for sku, price in SKUS.items():  # as after a catalogue sync (before the hooks: no echo)
        box.add_product(sku, price)
    register_webhooks(box)
    box.shop.customer = box.add_contact()
    box.shop.bp_customer = box.bp_contact_of(box.shop.customer) or 0
    try:
        yield box
    finally:
        box.host.stop()  # one started by start_host (the sandbox fixture stops the first)
        box.bp_sim.dispatcher.reset()


def _lookup_id(value: Any) -> str:
    """A lookup as the simulator's admin tables show it ({"id": ...}) or as a plain id."""
    return str(value.get("id") if isinstance(value, dict) else value or "")
