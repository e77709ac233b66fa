"""Probe: a parameter named context annotated with another class."""

import azure.functions as func
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest, context: str) -> func.HttpResponse:
    return func.HttpResponse(context)
