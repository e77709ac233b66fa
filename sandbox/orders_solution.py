"""The orders part of the sandbox's Dataverse: the integration columns and key on `salesorder`
and change tracking on `salesorder` and `salesorderdetail`, provisioned through the metadata Web
API by the shared provisioner (shared/dataverse/provision.py), as sandbox/catalogue_solution.py
does for `product`.

Provisioned (contracts: issue 13): `salesorder.bpi_brightpearlid` (String 100, alternate key
`bpi_brightpearlid_key`), `salesorder.bpi_sendtobrightpearl` (Boolean, the "send to Brightpearl"
trigger column), change tracking on both tables (the poller's backstop; webhooks on them need
nothing provisioned: every table has its sdkmessagefilters). What customers and the catalogue get
is not changed. The plan is the shared schema plan's orders part (what `syncctl dataverse provision`
applies in a real environment); `sandbox up` provisions it with the rest (customers_solution).
"""

from __future__ import annotations

from sandbox import catalogue_solution
from sandbox.dataverse.app import Simulator
from sandbox.dataverse.inprocess import in_process_client
from shared.dataverse.client import DataverseClient
from shared.dataverse.provision import Provisioner, ProvisionReport
from shared.dataverse.schema import SchemaPlan, plan_for_orders

BRIGHTPEARL_ID = "bpi_brightpearlid"
SEND_FLAG = "bpi_sendtobrightpearl"
BRIGHTPEARL_KEY = "bpi_brightpearlid_key"


def orders_plan() -> SchemaPlan:
    """salesorder's integration columns and key, and change tracking on orders and their lines
    (the shared plan's orders part, shared/dataverse/schema.py `plan_for_orders`)."""
    return SchemaPlan(tuple(plan_for_orders()))


def provision_orders(
    client: DataverseClient, *, poll_interval: float = 2.0, key_timeout: float = 300.0
) -> ProvisionReport:
    """Create what the orders flow needs on `salesorder`/`salesorderdetail` and is missing; re-runnable."""
    provisioner = Provisioner(client, poll_interval=poll_interval, key_timeout=key_timeout)
    return provisioner.run(orders_plan())


def provision_simulator(simulator: Simulator) -> ProvisionReport:
    """Provision the orders part into `simulator` and keep it across `/_sandbox/reset`."""
    with in_process_client(simulator) as client:
        report = provision_orders(client, poll_interval=0.05, key_timeout=60)
    problems = [str(p) for p in report.remaining] + [f"key {k} still building" for k in report.pending_keys]
    if problems:
        raise RuntimeError("provisioning orders into the sandbox's Dataverse failed: " + "; ".join(problems))
    simulator._base_schema = simulator.engine.schema.clone()
    return report


def install(simulator: Simulator) -> ProvisionReport:
    """A bare org provisioned for customers and the catalogue (catalogue_solution.install), then orders."""
    catalogue_solution.install(simulator)
    return provision_simulator(simulator)
