"""Probe: a settlement parameter with a default value."""

import typing

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import batch_topic, new_app

app = new_app()


@batch_topic(app)
def probe(
    msgs: typing.List[servicebus.ServiceBusReceivedMessage],  # noqa: UP006
    message_actions: servicebus.ServiceBusMessageActions = None,  # type: ignore[assignment]
) -> None:
    pass
