"""Fulfilment: the flow trigger (fulfilment-to-brightpearl: allocation and goods-out notes), from
the spec (shared/flows/fulfilment_spec.py). No business logic, no wiring: shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_sync_flow
from shared.flows.fulfilment_spec import FULFILMENT

bp = func.Blueprint()

for flow in FULFILMENT.flows:
    register_sync_flow(bp, flow)
