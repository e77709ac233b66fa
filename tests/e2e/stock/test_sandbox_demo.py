"""`syncctl sandbox demo` from start to end against a sandbox on the real clock (as `sandbox up`
runs it: webhooks registered against the host, the catalogue brought into Dynamics): the six
customer scenes, then the catalogue scene, where a Brightpearl stock correction arrives in
Dynamics' `bpi_availablestock` and a price change in the Retail GBP price list item, then the
order scene: a Dynamics order submitted, created in Brightpearl, allocated there by the
integration at "Ready to ship" (fulfilment automation), shipped, fulfilled in Dynamics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from sandbox.catalogue_demo import prepare_catalogue, subscriptions
from sandbox.dataverse import SimulatorServer as DataverseServer
from sandbox.demo import Endpoints, register_webhooks, run_demo
from sandbox.host import LocalHost
from sandbox.orders_demo import demo_settings
from shared import runtime
from shared.bus.local import LocalBus
from shared.settings import load_settings
from shared.store import StateStore
from tests.e2e.customers.conftest import NEVER, ROOT, sandbox_values

PRODUCTS = 40


@pytest.fixture
def live_sandbox(
    bp_server: BrightpearlServer, dv_server: DataverseServer, azurite: str, tmp_path: Path
) -> Iterator[tuple[dict[str, str], int]]:
    """The whole sandbox in this process on the real clock, its webhooks registered and a small
    catalogue in Dynamics: what `syncctl sandbox up` leaves (the customer base aside). Yields
    the app settings and the host's port. Retries wait a second or two (15 s in the sandbox)."""
    bp_server.simulator.configure(seed_contacts=0, seed_products=0, seed_orders=0, rate_limit=100_000)
    bp_server.simulator.reset()
    dv_server.simulator.reset()
    prefix = f"d{uuid.uuid4().hex[:10]}"
    values = sandbox_values(bp_server, dv_server, azurite, tmp_path, prefix)
    values.update(
        BRIGHTPEARL_PRODUCT_POLL_SCHEDULE=NEVER,
        BRIGHTPEARL_STOCK_POLL_SCHEDULE=NEVER,
        BRIGHTPEARL_STOCK_SWEEP_SCHEDULE=NEVER,
        RETRY_BASE_DELAY_SECONDS="1",
        RETRY_MAX_DELAY_SECONDS="2",
    )
    values = demo_settings(values)  # fulfilment automation on, as `sandbox up` runs the demo
    store = StateStore.from_connection_string(
        azurite, table_prefix=prefix, claim_timeout=timedelta(seconds=30)
    )
    store.ensure_tables()
    bus = LocalBus(Path(values["LOCAL_BUS_PATH"]))
    try:
        with (
            runtime.override(settings=load_settings(values), publisher=bus, state_store=store),
            LocalHost(
                "function_app", settings=values, bus=bus, port=0, project_root=ROOT, poll_interval=0.02
            ) as host,
        ):
            port = int(host.api_url.rsplit(":", 1)[1].split("/")[0])
            register_webhooks(values, Endpoints.from_settings(values, port), lambda line: None)
            prepare_catalogue(
                values,
                lambda line: None,
                host=host.api_url,
                master_key=values["LOCAL_MASTER_KEY"],
                products=PRODUCTS,
                timeout=60,
                own_runtime=False,
                bus=bus,
            )
            yield values, port
    finally:
        runtime.reset()
        bus.close()
        store.drop_tables()
        store.close()


def test_the_demo_ends_with_a_stock_correction_and_a_price_change_reaching_dynamics(
    live_sandbox: tuple[dict[str, str], int],
) -> None:
    values, port = live_sandbox
    lines: list[str] = []

    code = run_demo(values, host_port=port, echo=lines.append)

    text = "\n".join(lines)
    assert code == 0, text
    for scene in range(1, 11):
        assert f"[bold]{scene}. " in text, text
    assert text.index("6. After convergence") < text.index("7. A warehouse user corrects stock")
    [arrived] = [line for line in lines if "bpi_availablestock" in line]
    before, after = arrived.split("bpi_availablestock ")[1].split(" in ")[0].split(" -> ")
    assert float(after) == float(before) + 12, arrived
    assert "via the on-hand webhook" in arrived
    if "prices-to-dataverse" in subscriptions():
        [priced] = [line for line in lines if "Dynamics price list Retail GBP" in line]
        old, new = priced.split("(Brightpearl ")[1].rstrip(")").split(" -> ")
        assert f"amount {float(old):g} -> {float(new):g}" in priced
    else:
        assert "prices are not wired yet" in text
    # the order scene: submitted in Dynamics, one Brightpearl order, shipped there, fulfilled here
    [created] = [line for line in lines if "-> Brightpearl sales order" in line]
    assert "with 3 rows" in created, created  # two products and the freight row
    # allocated by the integration at "Ready to ship": one note, the lines show reserved and released
    [allocated] = [line for line in lines if "-> reserved and released on goods-out notes" in line]
    assert "in warehouse 2" in allocated, allocated
    [figures] = [line for line in lines if "-> Dynamics order lines:" in line]
    assert "2 ordered / 2 reserved / 2 released" in figures, figures
    assert "1 ordered / 1 reserved / 1 released" in figures, figures
    [shipped] = [line for line in lines if "Fulfilled, shipped on" in line]
    assert "tracking DEMO-TRACK-1" in shipped and "shipped on None" not in shipped, shipped
