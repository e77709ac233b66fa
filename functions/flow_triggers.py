"""Registers flows as Service Bus topic triggers (batch, SDK-type binding, manual settlement) and
pollers as timer triggers, each from its spec (shared/sync/spec.py) in one call."""

from __future__ import annotations

import typing
from collections.abc import Callable

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus

from shared import runtime
from shared.bus.lockrenewal import LockRenewal
from shared.bus.settlement import Settlement
from shared.flows.runner import Flow, run_flow
from shared.ops import flow_control
from shared.resilience import BackoffPolicy
from shared.sync.spec import FlowSpec, PollerSpec

SERVICE_BUS_CONNECTION = "ServiceBusConnection"


def backoff_policy() -> BackoffPolicy:
    return BackoffPolicy.from_settings(runtime.settings().retry)


def register_flow(
    bp: func.Blueprint,
    *,
    function_name: str,
    topic_setting: str,
    subscription: str,
    topic_of: Callable[[], str],
    build_flow: Callable[[], Flow],
) -> None:
    """Add a topic trigger named `function_name` on (%topic_setting%, subscription).

    `topic_of` gives the resolved topic name (for retry copies); `build_flow` builds the flow
    once, on first delivery.
    """
    flows: dict[str, Flow] = {}

    @bp.function_name(function_name)
    @bp.service_bus_topic_trigger(
        arg_name="messages",
        topic_name=f"%{topic_setting}%",
        subscription_name=subscription,
        connection=SERVICE_BUS_CONNECTION,
        cardinality="many",
        auto_complete_messages=False,
    )
    def handler(
        # typing.List, not list[...]: the Python worker accepts a binding annotation only when it
        # is a class or a typing generic and refuses the builtin generic ("binding messages has
        # invalid non-type annotation list[...]", Azure/azure-functions-python-worker#1034).
        # tests/platform checks this against the real worker.
        messages: typing.List[servicebus.ServiceBusReceivedMessage],  # noqa: UP006
        message_actions: servicebus.ServiceBusMessageActions,
    ) -> None:
        if "flow" not in flows:
            flows["flow"] = build_flow()
        settlement = Settlement(
            runtime.publisher(),
            topic=topic_of(),
            subscription=subscription,
            policy=backoff_policy(),
            clock=runtime.clock,
        )
        pause = flow_control.PAUSES.paused(subscription)
        if pause is not None:  # `syncctl flow pause`: keep every message, scheduled, run nothing
            flow_control.postpone(messages, message_actions, settlement, pause=pause, now=runtime.clock())
            return
        # Batch triggers get no lock renewal from the platform: hold the locks for the work.
        every = runtime.settings().bus.lock_renewal_seconds
        with LockRenewal(messages, message_actions, every=every, clock=runtime.clock):
            run_flow(flows["flow"], messages, message_actions, settlement)


def register_sync_flow(bp: func.Blueprint, flow: FlowSpec) -> None:
    """The topic trigger of a spec's flow: its subscription on its source's topic, the flow
    rebuilt from the current adapters for every batch (runtime.FreshFlow)."""
    register_flow(
        bp,
        function_name=flow.function_name,
        topic_setting=flow.topic_setting,
        subscription=flow.name,
        topic_of=lambda: runtime.topic(flow.topic_setting),
        build_flow=lambda: runtime.FreshFlow(flow),
    )


def register_poller(bp: func.Blueprint, poller: PollerSpec) -> None:
    """A timer trigger named `poller.function_name` on the schedule its setting holds, running
    the spec's poller once per tick (a transient failure waits for the next tick)."""

    @bp.function_name(poller.function_name)
    @bp.timer_trigger(arg_name="timer", schedule=f"%{poller.schedule_setting}%", run_on_startup=False)
    def tick(timer: func.TimerRequest) -> None:
        runtime.run_poller(poller)
