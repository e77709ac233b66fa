"""Probe: a settlement parameter with another name (the worker goes by its type)."""

import typing

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import batch_topic, new_app

app = new_app()


@batch_topic(app)
def probe(
    msgs: typing.List[servicebus.ServiceBusReceivedMessage],  # noqa: UP006
    actions: servicebus.ServiceBusMessageActions,
) -> None:
    pass
