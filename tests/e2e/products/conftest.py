"""The whole sandbox for the products flow: the Brightpearl simulator delivering its product
webhooks to the local Functions host's ingress (registered as `syncctl webhooks register` does),
the Dataverse simulator as a bare organisation provisioned for customers and the catalogue
(sandbox.catalogue_solution) that creates products Draft, with a seeded unit group, currencies
and price lists, Azurite tables, the local bus and function_app.py on a fake clock.

The mapping is mappings/products.yaml naming the seeded unit group and default price list (as an
operator configures it), read through the PRODUCT_MAPPING_PATH setting. Pollers run only when a
test runs them; webhooks are delivered for real (a background thread of the simulator).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from sandbox import catalogue_solution
from sandbox.catalogue_solution import CatalogueRefs
from sandbox.dataverse import SimulatorConfig as DataverseConfig
from sandbox.dataverse import SimulatorServer as DataverseServer
from shared.brightpearl.webhook_registration import DEFAULT_EVENTS, sync_brightpearl_webhooks
from shared.store import AuditEntry, AuditResult
from tests.e2e.customers.conftest import (
    BP_TOPIC,
    NEVER,
    ROOT,
    Sandbox,
    bp_server,
    sandbox,
)

# the customers' whole sandbox and Brightpearl server, with this folder's Dataverse and settings
__all__ = ["bp_server", "sandbox"]

FLOW = "products-to-dataverse"
UNIT_GROUP, BASE_UNIT, PRICE_LIST = "Catalogue", "each", "Retail GBP"
BATCH_SECONDS = 0.3  # changes raised this close together go out as one id set (idSetAccepted)
DRAFT, ACTIVE, RETIRED = (2, 0), (0, 1), (1, 2)  # (statecode, statuscode), reference §10.7


@pytest.fixture(scope="session")
def dv_server() -> Iterator[DataverseServer]:
    # A bare organisation with the integration's columns for customers and the catalogue; it
    # creates products Draft (createproductswithoutparentinactivestate false, the default).
    with DataverseServer(
        DataverseConfig(fractional_retry_after=True, products_active_on_create=False)
    ) as server:
        catalogue_solution.install(server.simulator)
        yield server


def product_mapping(folder: Path) -> Path:
    """mappings/products.yaml naming the seeded unit group, its base unit and price list."""
    text = (ROOT / "mappings" / "products.yaml").read_text()
    for old, new in (
        ("name: Default Unit ", f"name: {UNIT_GROUP} "),
        ("default_unit: Primary Unit ", f"default_unit: {BASE_UNIT} "),
        ("create_if_missing: true ", "create_if_missing: false"),
        ("default: null                     # a Dynamics price list", f"default: {PRICE_LIST}  #"),
    ):
        assert old in text, f"mappings/products.yaml changed: {old!r} not found"
        text = text.replace(old, new)
    path = folder / "products.yaml"
    path.write_text(text)
    return path


@dataclass
class ProductSandbox(Sandbox):
    """The customers' whole sandbox (tests/e2e/customers/conftest.py) seen from the catalogue."""

    refs: CatalogueRefs  # the seeded unit group, unit, currencies and price lists

    @classmethod
    def of(cls, box: Sandbox, refs: CatalogueRefs) -> ProductSandbox:
        return cls(**{f.name: getattr(box, f.name) for f in fields(Sandbox)}, refs=refs)

    # -- Brightpearl, as its users change it (each change raises its webhook) -------------------
    def create(self, sku: str | None, name: str = "Blue Mug", **extra: Any) -> int:
        body: dict[str, Any] = {
            "brandId": 1,
            "identity": {"sku": sku} if sku is not None else {},
            "salesChannels": [{"salesChannelName": "Brightpearl", "productName": name}],
            "stock": {"stockTracked": True},
            **extra,
        }
        return int(self.bp.request("POST", "/product-service/product/", json=body).response)

    def rename(self, product_id: int, name: str) -> None:
        channels = [{"salesChannelName": "Brightpearl", "productName": name}]
        self.bp.request("PUT", f"/product-service/product/{product_id}", json={"salesChannels": channels})

    def archive(self, product_id: int, status: str = "ARCHIVED") -> None:
        self.bp_sim.state.set_product_status(product_id, status)

    def destroy(self, product_id: int) -> None:
        self.bp_sim.state.destroy_product(product_id)

    def lose_next_webhooks(self, count: int = 1) -> None:
        """The simulator drops its next `count` webhook deliveries (a lost webhook)."""
        self.bp_sim.set_webhook_faults(drop=count)

    # -- driving ---------------------------------------------------------------------------------
    def deliver(self, timeout: float = 60.0) -> None:
        """Wait until the simulator has delivered every webhook and the host has worked off
        every notice they brought (and any retry copy due on the fake clock)."""
        deadline = time.monotonic() + timeout
        while True:
            while not self.bp_sim.dispatcher.idle():
                if time.monotonic() > deadline:
                    raise AssertionError("Brightpearl webhooks still undelivered")
                time.sleep(0.02)
            self.host.wait_idle(timeout=timeout)
            if self.bp_sim.dispatcher.idle() and not self.bus.counts(BP_TOPIC, FLOW).active:
                return

    def run_retries(self, timeout: float = 60.0, max_rounds: int = 20) -> None:
        """Move the fake clock past every scheduled retry copy of the flow until none is left."""
        for _ in range(max_rounds):
            if not self.bus.counts(BP_TOPIC, FLOW).scheduled:
                return
            self.clock.advance(61)
            self.host.wait_idle(timeout=timeout)
        raise AssertionError("retry copies still scheduled")

    def poll(self) -> None:
        """One run of the product-search poller (the backstop for lost webhooks)."""
        self.host.run_timer("poll_brightpearl_products")
        self.host.wait_idle(timeout=60)

    # -- looking, as a user of Dynamics sees it ---------------------------------------------------
    def products(self) -> dict[str, dict[str, Any]]:
        """Dynamics products by their Brightpearl id."""
        return {str(r["bpi_brightpearlid"]): r for r in self.dv.rows("product") if r.get("bpi_brightpearlid")}

    def product(self, product_id: int) -> dict[str, Any]:
        return self.products()[str(product_id)]

    def dead_lettered(self) -> list[Any]:
        return self.dead_letters(BP_TOPIC, FLOW)

    def audit(self, product_id: int) -> list[AuditEntry]:
        """The products flow's audit rows of `product_id`, newest first (other flows that take
        product notices, such as stock, audit under their own name)."""
        entries = self.store.audit.for_record("product", "brightpearl", str(product_id))
        return [e for e in entries if e.flow == FLOW]

    def audited(self, product_id: int) -> list[AuditResult]:
        return [e.result for e in self.audit(product_id)]

    def product_gets(self) -> int:
        """Product GET calls Brightpearl has answered so far."""
        with self.bp_sim._faults_lock:
            return int(self.bp_sim.requests.get("GET product-service/product[/{ids}]", 0))

    def webhooks_delivered(self, event: str) -> list[dict[str, Any]]:
        log = self.bp_sim.dispatcher.log.snapshot()
        return [e for e in log if e["event"] == event and e.get("outcome") == "delivered"]


@pytest.fixture
def sandbox_settings(tmp_path: Path) -> dict[str, str]:
    """The mapping naming the seeded catalogue; the product poller runs only when a test runs it."""
    return {
        "PRODUCT_MAPPING_PATH": str(product_mapping(tmp_path)),
        "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER,
    }


@pytest.fixture
def products_sandbox(sandbox: Sandbox, dv_server: DataverseServer) -> Iterator[ProductSandbox]:
    bp_sim = sandbox.bp_sim
    bp_sim.configure(webhook_batch_seconds=BATCH_SECONDS)
    # a unit group with its base unit, GBP and EUR, one price list in each
    refs = catalogue_solution.seed_simulator(dv_server.simulator, unit_group=UNIT_GROUP, base_unit=BASE_UNIT)
    # Point Brightpearl's webhooks at the host's ingress, as `syncctl webhooks register` does.
    sync_brightpearl_webhooks(
        sandbox.bp,
        ingress_url=f"{sandbox.host.api_url}/webhooks/brightpearl",
        function_key=sandbox.values["LOCAL_FUNCTION_KEY"],
        secret=sandbox.values["BRIGHTPEARL_WEBHOOK_SECRET"],
        events=list(DEFAULT_EVENTS),
        dry_run=False,
    )
    try:
        yield ProductSandbox.of(sandbox, refs)
    finally:
        bp_sim.dispatcher.reset()
        bp_sim.configure(webhook_batch_seconds=0.05)  # the simulator's default
