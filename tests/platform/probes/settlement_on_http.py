"""Probe: a settlement parameter on an HTTP function."""

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest, message_actions: servicebus.ServiceBusMessageActions) -> func.HttpResponse:
    return func.HttpResponse("ok")
