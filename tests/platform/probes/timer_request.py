"""Probe: a timer trigger annotated func.TimerRequest."""

import azure.functions as func
from probe_triggers import new_app, timer

app = new_app()


@timer(app)
def probe(timer: func.TimerRequest) -> None:
    pass
