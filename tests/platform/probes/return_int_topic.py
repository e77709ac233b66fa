"""Probe: a topic function (no $return binding) annotated to return int."""

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import new_app, one_topic

app = new_app()


@one_topic(app)
def probe(msg: servicebus.ServiceBusReceivedMessage) -> int:
    return 1
