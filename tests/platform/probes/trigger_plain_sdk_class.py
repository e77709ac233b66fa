"""Probe: a topic trigger annotated with azure.servicebus's class, not the extension's subclass."""

import azure.servicebus
from probe_triggers import new_app, one_topic

app = new_app()


@one_topic(app)
def probe(msg: azure.servicebus.ServiceBusReceivedMessage) -> None:
    pass
