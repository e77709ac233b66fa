"""Customer value (issue 14 items 4-5): the flow trigger (customer-value-to-dataverse), the
flush timer and the nightly recompute timer, all from the spec
(shared/flows/customer_value_spec.py). No business logic, no wiring: shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_poller, register_sync_flow
from shared.flows.customer_value_spec import CUSTOMER_VALUE

bp = func.Blueprint()

for flow in CUSTOMER_VALUE.flows:
    register_sync_flow(bp, flow)
for poller in CUSTOMER_VALUE.pollers:
    register_poller(bp, poller)
