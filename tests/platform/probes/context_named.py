"""Probe: a func.Context parameter named context."""

import azure.functions as func
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(context.function_name)
