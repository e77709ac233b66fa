"""Probe: a trigger annotated typing.Optional[X]."""

import typing

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import new_app, one_topic

app = new_app()


@one_topic(app)
def probe(msg: typing.Optional[servicebus.ServiceBusReceivedMessage]) -> None:  # noqa: UP045
    pass
