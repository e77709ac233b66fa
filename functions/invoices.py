"""Invoices and payments: the flow trigger (invoices-to-dataverse) and the customer-payment
poller, from the spec (shared/flows/invoices_spec.py). No business logic, no wiring:
shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_poller, register_sync_flow
from shared.flows.invoices_spec import INVOICES

bp = func.Blueprint()

for flow in INVOICES.flows:
    register_sync_flow(bp, flow)
for poller in INVOICES.pollers:
    register_poller(bp, poller)
