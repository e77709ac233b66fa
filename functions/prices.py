"""Prices: the flow trigger (prices-to-dataverse), from the spec (shared/flows/prices_spec.py).
It has no timer: the products poller's notices are its backstop. No business logic, no wiring:
shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_sync_flow
from shared.flows.prices_spec import PRICES

bp = func.Blueprint()

for flow in PRICES.flows:
    register_sync_flow(bp, flow)
