"""Test app: an annotation that names something that does not exist."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="x")
def handler(req: func.HttpRequest, thing: NoSuchType = None) -> str:  # noqa: F821
    return "x"
