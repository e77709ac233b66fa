"""Probe: a batch trigger annotated typing.List[...] with a settlement parameter (our flows' shape)."""

from __future__ import annotations

import typing

import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import batch_topic, new_app

app = new_app()


@batch_topic(app)
def probe(
    msgs: typing.List[servicebus.ServiceBusReceivedMessage],  # noqa: UP006
    message_actions: servicebus.ServiceBusMessageActions,
) -> None:
    pass
