"""The whole sandbox for customer value (issue 14 items 4-5): Azurite tables, the local bus and
function_app.py on a fake clock (tests/e2e/customers/conftest.py), with both simulators.

Customers are made as the customers flow leaves them: a Brightpearl contact, a Dynamics contact
(optionally under a parent account) and the `customer` link between them. Brightpearl orders and
credits are made and invoiced in the simulator, in process; their notices reach the flow as a
webhook or poller sends them, addressed to customer-value-to-dataverse alone (`replay_to`) so the
other flows on the topic stay out of the way. The flush and the nightly recompute are run as
their timers (`run_timer`); every schedule that could fire on its own is set to never.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.host import LocalHost
from shared.events import ChangeNotice, Envelope
from shared.flows.customer_value_flush import COLUMNS
from shared.flows.customer_value_store import TableCustomerValueStore
from tests.e2e.customers.conftest import BP_TOPIC, NEVER, ROOT, Sandbox, bp_server, dv_server, sandbox

__all__ = ["bp_server", "dv_server", "sandbox"]

FLOW = "customer-value-to-dataverse"
_versions = itertools.count(1)


def quiet_settings() -> dict[str, str]:
    """The app settings of these tests: no timer fires by itself, three attempts before a dead letter."""
    never = {
        name: NEVER
        for name in (
            "BRIGHTPEARL_ORDER_POLL_SCHEDULE",
            "BRIGHTPEARL_PAYMENT_POLL_SCHEDULE",
            "RETURNS_POLL_SCHEDULE",
            "ORDERS_DATAVERSE_POLL_SCHEDULE",
            "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE",
            "BRIGHTPEARL_STOCK_POLL_SCHEDULE",
            "BRIGHTPEARL_STOCK_SWEEP_SCHEDULE",
            "CUSTOMER_VALUE_FLUSH_SCHEDULE",
            "CUSTOMER_VALUE_RECOMPUTE_SCHEDULE",
        )
    }
    return {**never, "RETRY_MAX_ATTEMPTS": "3", "EXCHANGE_RATE_SOURCE": "brightpearl"}


@pytest.fixture
def sandbox_settings() -> dict[str, str]:
    return quiet_settings()


@dataclass
class ValueSandbox:
    box: Sandbox

    @property
    def state(self) -> Any:
        return self.box.bp_sim.state

    @property
    def values(self) -> TableCustomerValueStore:
        return TableCustomerValueStore(self.box.store.cursors.table)

    # -- customers -------------------------------------------------------------------------------
    def customer(self, last: str, *, account: str | None = None) -> tuple[int, str]:
        """A Brightpearl contact, a Dynamics contact (under `account`) and their link."""
        bp_id = self.state.create_contact({"firstName": "Val", "lastName": last}, quiet=True)
        row: dict[str, Any] = {"firstname": "Val", "lastname": last}
        if account:
            row["parentcustomerid_account@odata.bind"] = f"/accounts({account})"
        contact = self.box.dvc.create("contacts", row)
        self.box.store.links.link("customer", "brightpearl", str(bp_id), "dataverse", contact)
        return bp_id, contact

    def account(self, name: str) -> str:
        return self.box.dvc.create("accounts", {"name": name})

    # -- Brightpearl transactions ----------------------------------------------------------------
    def order(
        self,
        customer: int,
        net: str,
        *,
        currency: str = "GBP",
        placed: str = "2026-02-01",
        invoiced: str | None = "same",
        kind: str = "SO",
        parent: int | None = None,
    ) -> int:
        body: dict[str, Any] = {
            "customer": {"id": customer},
            "currency": {"code": currency},
            "placedOn": f"{placed}T10:00:00+00:00",
            "rows": [
                {
                    "name": "Item",
                    "quantity": "1",
                    "taxCode": "T20",
                    "net": net,
                    "tax": str((Decimal(net) * Decimal("0.2")).quantize(Decimal("0.01"))),
                }
            ],
        }
        if parent:
            body["parentId"] = parent
        order_id = int(self.state.create_sales_order(body, kind, quiet=True))
        if kind == "SO" and invoiced:
            self.state.invoice_order(order_id, {"taxDate": placed if invoiced == "same" else invoiced})
        return order_id

    def refund(self, credit: int) -> None:
        answer = httpx.post(
            f"{self.box.values['BRIGHTPEARL_BASE_URL']}/_sandbox/orders/{credit}/pay",
            json={"paymentType": "PAYMENT"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text

    def rates(self, *rates: tuple[str, str, str]) -> None:
        """Replace the Brightpearl rate table: (currency, active from, rate) against GBP."""
        self.state.replace_exchange_rates(
            [{"currencyCode": c, "rateActiveFrom": d, "rate": r} for c, d, r in rates]
        )

    # -- the flow --------------------------------------------------------------------------------
    def notify(self, entity: str, *ids: int) -> None:
        """Notices of these ids (one per id) for the flow, as a webhook or poller sends them."""
        messages = []
        for record_id in ids:
            notice = ChangeNotice(
                system="brightpearl",
                entity=entity,
                ids=(str(record_id),),
                operation="updated",
                observed_at=self.box.clock(),
                source="/brightpearl/sandbox",
                origin="test",
                version=f"v{next(_versions)}",
            )
            messages.append(Envelope.wrap(notice).model_copy(update={"replay_to": FLOW}).to_message())
        self.box.bus.publish(BP_TOPIC, messages)
        self.box.host.wait_idle(timeout=60)

    def flush(self) -> None:
        self.box.host.run_timer("flush_customer_value")

    def recompute(self) -> None:
        self.box.host.run_timer("recompute_customer_value")

    def run_retries(self, max_rounds: int = 30) -> None:
        for _ in range(max_rounds):
            if not self.box.bus.counts(BP_TOPIC, FLOW).scheduled:
                return
            self.box.clock.advance(61)
            self.box.host.wait_idle(timeout=60)
        raise AssertionError("retry copies still scheduled")

    def restart(self) -> None:
        """A new instance of the Function App in place of the stopped one."""
        self.box.host.stop()
        self.box.host = LocalHost(
            "function_app",
            settings=self.box.values,
            bus=self.box.bus,
            port=self.box.host.port,
            clock=self.box.clock,
            project_root=ROOT,
            poll_interval=0.02,
        ).start()

    # -- looking ---------------------------------------------------------------------------------
    def held(self, entity_set: str, record_id: str) -> dict[str, Any]:
        key = "contactid" if entity_set == "contacts" else "accountid"
        [row] = list(self.box.dvc.query(entity_set, select=[key, *COLUMNS], filter=_eq(key, record_id)))
        return {c: row.get(c) for c in COLUMNS}

    def dead_letters(self) -> list[Any]:
        return self.box.dead_letters(BP_TOPIC, FLOW)


def _eq(column: str, value: str) -> Any:
    from shared.dataverse import odata

    return odata.in_(column, [value])


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@pytest.fixture
def values_box(sandbox: Sandbox) -> Iterator[ValueSandbox]:
    box = ValueSandbox(sandbox)
    box.rates(("EUR", "2026-01-01", "1.10"), ("USD", "2026-01-01", "1.25"), ("USD", "2026-03-01", "1.30"))
    try:
        yield box
    finally:
        sandbox.host.stop()  # one `restart` started (the sandbox fixture stops only the first)
