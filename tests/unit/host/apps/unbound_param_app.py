"""Test app: a function with a parameter that no binding fills."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="x")
def handler(req: func.HttpRequest, extra: str) -> str:
    return extra
