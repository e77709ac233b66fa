"""Probe: a settlement parameter named message_actions without an annotation."""

import typing

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import batch_topic, new_app

app = new_app()


@batch_topic(app)
def probe(
    msgs: typing.List[servicebus.ServiceBusReceivedMessage],  # noqa: UP006
    message_actions,  # type: ignore[no-untyped-def]
) -> None:
    pass
