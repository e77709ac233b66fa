"""Probe: an HTTP function annotated to return typing.Optional[X]."""

import typing

import azure.functions as func
from probe_triggers import http, new_app

app = new_app()


@http(app)
def probe(req: func.HttpRequest) -> typing.Optional[func.HttpResponse]:  # noqa: UP045
    return None
