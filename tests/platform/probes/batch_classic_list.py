"""Probe: a batch trigger of the classic func.ServiceBusMessage, as typing.List[...]."""

import typing

import azure.functions as func
from probe_triggers import batch_topic, new_app

app = new_app()


@batch_topic(app)
def probe(msgs: typing.List[func.ServiceBusMessage]) -> None:  # noqa: UP006
    pass
