"""Returns: the flow trigger (returns-to-dataverse) and the sales-credit poller, from the spec
(shared/flows/returns_spec.py). No business logic, no wiring: shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_poller, register_sync_flow
from shared.flows.returns_spec import RETURNS

bp = func.Blueprint()

for flow in RETURNS.flows:
    register_sync_flow(bp, flow)
for poller in RETURNS.pollers:
    register_poller(bp, poller)
