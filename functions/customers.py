"""Customers: the two flow triggers (customers-to-dataverse, customers-to-brightpearl) and the
two poller timers (Brightpearl contact-search, Dataverse change tracking), all from the spec
(shared/flows/customers_spec.py). No business logic, no wiring: shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_poller, register_sync_flow
from shared.flows.customers_spec import CUSTOMERS
from shared.runtime import dataverse_source

__all__ = ["bp", "dataverse_source"]  # dataverse_source: kept for callers of the old location

bp = func.Blueprint()

for flow in CUSTOMERS.flows:
    register_sync_flow(bp, flow)
for poller in CUSTOMERS.pollers:
    register_poller(bp, poller)
