"""Products: the flow triggers (products-to-dataverse; products-to-brightpearl, which writes
nothing unless mappings/products.yaml gives Dynamics a field to write back) and the Brightpearl
product-search poller timer (the backstop for lost product webhooks), all from the spec
(shared/flows/products_spec.py). No business logic, no wiring: shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_poller, register_sync_flow
from shared.flows.products_spec import PRODUCTS

bp = func.Blueprint()

for flow in PRODUCTS.flows:
    register_sync_flow(bp, flow)
for poller in PRODUCTS.pollers:
    register_poller(bp, poller)
