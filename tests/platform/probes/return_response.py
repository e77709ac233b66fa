"""Probe: an HTTP function returning func.HttpResponse."""

import azure.functions as func
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")
