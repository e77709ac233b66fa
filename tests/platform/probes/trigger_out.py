"""Probe: an input trigger annotated azure.functions.Out[...]."""

import azure.functions as func
from probe_triggers import new_app, one_topic

app = new_app()


@one_topic(app)
def probe(msg: func.Out[str]) -> None:
    pass
