"""Probe: an unbound parameter with a default value."""

import azure.functions as func
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest, extra: str = "x") -> func.HttpResponse:
    return func.HttpResponse(extra)
