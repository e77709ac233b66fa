"""Test function app: the production flow trigger (functions.flow_triggers.register_flow) over a
slow fake flow, so a batch runs longer than its subscription's lock (issue 17 item 3).

Tests steer it through module attributes (use host.module) and shared.runtime.override.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import azure.functions as func

from functions.flow_triggers import register_flow
from shared.events import Envelope
from shared.outcomes import Completed, Outcome

CLOCK: list = []  # the test's fake clock
STEPS = [20.0, 20.0, 20.0]  # seconds the first invocation spends (fake clock), step by step
# Set by the test: wait_for_renewals(n) blocks until the n-th renewal round after a step
# (returns False on timeout), so the fake clock never outruns the renewal thread.
WAIT_FOR_RENEWALS: list = []
INVOCATIONS: list[int] = []  # batch size per invocation
STEP_RENEWED: list[bool] = []  # after each step of the slow invocation: did a renewal round follow?
_lock = threading.Lock()


class SlowFlow:
    """Completes every notice; its first invocation moves the fake clock past the lock."""

    name = "slow-flow"

    def handle(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        with _lock:
            INVOCATIONS.append(len(envelopes))
            first = len(INVOCATIONS) == 1
        if first:
            for n, seconds in enumerate(STEPS, start=1):
                CLOCK[0].advance(seconds)
                if WAIT_FOR_RENEWALS:
                    STEP_RENEWED.append(WAIT_FOR_RENEWALS[0](n))
        return [Completed() for _ in envelopes]


bp = func.Blueprint()
register_flow(
    bp,
    function_name="long_batch",
    topic_setting="ORDERS_TOPIC",
    subscription="batch-manual",
    topic_of=lambda: "orders",
    build_flow=SlowFlow,
)
app = func.FunctionApp()
app.register_functions(bp)
