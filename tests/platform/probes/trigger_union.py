"""Probe: a trigger annotated X | None (a union is not a class nor a typing generic)."""

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import new_app, one_topic

app = new_app()


@one_topic(app)
def probe(msg: servicebus.ServiceBusReceivedMessage | None) -> None:
    pass
