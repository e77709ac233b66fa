"""Timeline: the flow trigger of timeline-to-dataverse, from the spec (shared/flows/timeline_spec.py).
No business logic, no wiring: shared/runtime.py builds."""

from __future__ import annotations

import azure.functions as func

from functions.flow_triggers import register_sync_flow
from shared.flows.timeline_spec import TIMELINE

bp = func.Blueprint()

for flow in TIMELINE.flows:
    register_sync_flow(bp, flow)
