"""Probe: a batch trigger of azure.servicebus's class (not the extension's), as typing.List[...]."""

import typing

import azure.servicebus
from probe_triggers import batch_topic, new_app

app = new_app()


@batch_topic(app)
def probe(msgs: typing.List[azure.servicebus.ServiceBusReceivedMessage]) -> None:  # noqa: UP006
    pass
