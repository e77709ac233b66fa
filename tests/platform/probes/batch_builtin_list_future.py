"""Probe: list[...] under from __future__ import annotations (a string the worker resolves)."""

from __future__ import annotations

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import batch_topic, new_app

app = new_app()


@batch_topic(app)
def probe(msgs: list[servicebus.ServiceBusReceivedMessage]) -> None:
    pass
