"""Orders: the two flow triggers (orders-to-brightpearl, orders-to-dataverse) and any backstop
timer, all from the spec (shared/flows/orders_spec.py). No business logic, no wiring:
shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_poller, register_sync_flow
from shared.flows.orders_spec import ORDERS

bp = func.Blueprint()

for flow in ORDERS.flows:
    register_sync_flow(bp, flow)
for poller in ORDERS.pollers:
    register_poller(bp, poller)
