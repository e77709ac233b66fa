"""Probe: an unannotated parameter named context."""

import azure.functions as func
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest, context) -> func.HttpResponse:  # type: ignore[no-untyped-def]
    return func.HttpResponse(context.function_name)
