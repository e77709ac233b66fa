"""Customers: the two flow triggers (customers-to-dataverse, customers-to-brightpearl) and the
two poller timers (Brightpearl contact-search, Dataverse change tracking). No business logic:
everything is built from shared.runtime and delegated to shared/flows."""

from __future__ import annotations

from datetime import timedelta

import azure.functions as func

from functions.flow_triggers import register_flow
from shared import runtime
from shared.events import Envelope
from shared.flows.customers_to_brightpearl import CustomersToBrightpearl
from shared.flows.customers_to_dataverse import CustomersToDataverse
from shared.flows.pollers import BrightpearlContactPoller, DataverseChangePoller
from shared.resilience import classify
from shared.telemetry import get_logger

log = get_logger("functions.customers")

bp = func.Blueprint()


def _brightpearl_topic() -> str:
    return runtime.settings().bus.brightpearl_changes_topic


def _dataverse_topic() -> str:
    return runtime.settings().bus.dataverse_changes_topic


def _publisher_to(topic_of):  # type: ignore[no-untyped-def]
    def publish(envelopes: list[Envelope]) -> None:
        if envelopes:
            runtime.publisher().publish(topic_of(), [e.to_message() for e in envelopes])

    return publish


def build_customers_to_dataverse() -> CustomersToDataverse:
    s = runtime.settings().customers
    return CustomersToDataverse(
        brightpearl=runtime.brightpearl(),
        dataverse=runtime.dataverse(),
        store=runtime.state_store(),
        mapping=runtime.customer_mapping(),
        publish=_publisher_to(_brightpearl_topic),
        sync_custom_fields=s.sync_custom_fields,
    )


def build_customers_to_brightpearl() -> CustomersToBrightpearl:
    s = runtime.settings().customers
    return CustomersToBrightpearl(
        brightpearl=runtime.brightpearl(),
        dataverse=runtime.dataverse(),
        store=runtime.state_store(),
        mapping=runtime.customer_mapping(),
        publish=_publisher_to(_dataverse_topic),
        sync_custom_fields=s.sync_custom_fields,
        integration_user_id=s.integration_user_id,
        trust_integration_user=s.trust_integration_user,
        delete_handling=s.delete_handling,
        delete_tag=s.delete_tag,
        scan_threshold=s.brightpearl_scan_threshold,
    )


class _FreshFlow:
    """Builds the flow from the current runtime adapters for every batch (construction is cheap),
    so settings, clients and the mapping file can change without a restart."""

    def __init__(self, name: str, build) -> None:  # type: ignore[no-untyped-def]
        self.name = name
        self._build = build

    def handle(self, envelopes):  # type: ignore[no-untyped-def]
        return self._build().handle(envelopes)


register_flow(
    bp,
    function_name="customers_to_dataverse",
    topic_setting="BRIGHTPEARL_CHANGES_TOPIC",
    subscription="customers-to-dataverse",
    topic_of=_brightpearl_topic,
    build_flow=lambda: _FreshFlow("customers-to-dataverse", build_customers_to_dataverse),
)
register_flow(
    bp,
    function_name="customers_to_brightpearl",
    topic_setting="DATAVERSE_CHANGES_TOPIC",
    subscription="customers-to-brightpearl",
    topic_of=_dataverse_topic,
    build_flow=lambda: _FreshFlow("customers-to-brightpearl", build_customers_to_brightpearl),
)


@bp.function_name("poll_brightpearl_contacts")
@bp.timer_trigger(arg_name="timer", schedule="%CUSTOMERS_BRIGHTPEARL_POLL_SCHEDULE%", run_on_startup=False)
def poll_brightpearl_contacts(timer: func.TimerRequest) -> None:
    s = runtime.settings()
    _tolerant(
        "Brightpearl contact poll",
        lambda: BrightpearlContactPoller(
            client=runtime.brightpearl(),
            cursors=runtime.state_store().cursors,
            publish=_publisher_to(_brightpearl_topic),
            clock=runtime.clock,
            source=f"/brightpearl/{s.brightpearl.account}",
            overlap=timedelta(seconds=s.customers.poll_overlap_seconds),
            initial_lookback=timedelta(hours=s.customers.poll_initial_lookback_hours),
            per_notice=s.customers.ids_per_notice,
        ).poll(),
    )


@bp.function_name("poll_dataverse_customers")
@bp.timer_trigger(arg_name="timer", schedule="%CUSTOMERS_DATAVERSE_POLL_SCHEDULE%", run_on_startup=False)
def poll_dataverse_customers(timer: func.TimerRequest) -> None:
    s = runtime.settings()
    _tolerant(
        "Dataverse change-tracking poll",
        lambda: DataverseChangePoller(
            client=runtime.dataverse(),
            cursors=runtime.state_store().cursors,
            publish=_publisher_to(_dataverse_topic),
            clock=runtime.clock,
            source=dataverse_source(),
            per_notice=s.customers.ids_per_notice,
        ).poll(),
    )


def _tolerant(what: str, poll) -> None:  # type: ignore[no-untyped-def]
    """Run a poll; a transient failure (throttling, 5xx, network) is logged and left to the next
    run (cursors only move after a publish, so nothing is skipped). Anything else is raised."""
    try:
        poll()
    except Exception as exc:
        verdict = classify(exc)
        if verdict is None or not verdict.transient:
            raise
        log.warning("%s failed (%s); the next run picks it up", what, verdict.reason)


def dataverse_source() -> str:
    s = runtime.settings().dataverse
    return f"/dataverse/{s.organization_id or s.url.split('//')[-1].split('/')[0]}"
