"""Probe: an HTTP function annotated to return X | None."""

import azure.functions as func
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest) -> func.HttpResponse | None:
    return None
