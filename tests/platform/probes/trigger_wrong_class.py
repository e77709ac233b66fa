"""Probe: a Service Bus trigger annotated with the HTTP request class."""

import azure.functions as func
from probe_triggers import new_app, one_topic

app = new_app()


@one_topic(app)
def probe(msg: func.HttpRequest) -> None:
    pass
