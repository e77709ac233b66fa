"""Stock: the flow trigger (stock-to-dataverse) and the two backstop timers (the goods-movement
poller and the stock sweep), all from the spec (shared/flows/stock_spec.py). No business logic,
no wiring: shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_poller, register_sync_flow
from shared.flows.stock_spec import STOCK

bp = func.Blueprint()

for flow in STOCK.flows:
    register_sync_flow(bp, flow)
for poller in STOCK.pollers:
    register_poller(bp, poller)
