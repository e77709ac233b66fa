"""Probe: a batch trigger annotated with the builtin generic list[...]."""

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import batch_topic, new_app

app = new_app()


@batch_topic(app)
def probe(msgs: list[servicebus.ServiceBusReceivedMessage]) -> None:
    pass
