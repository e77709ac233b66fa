"""Probe: a func.Context parameter not named context."""

import azure.functions as func
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest, ctx: func.Context) -> func.HttpResponse:
    return func.HttpResponse(ctx.function_name)
