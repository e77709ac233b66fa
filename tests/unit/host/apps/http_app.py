"""Test function app: HTTP triggers at each auth level, route params, methods, errors."""

import asyncio
import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
CALLS: list[str] = []


@app.route(route="items/{id}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    CALLS.append("get_item")
    body = {"id": req.route_params["id"], "q": dict(req.params), "method": req.method, "url": req.url}
    return func.HttpResponse(
        json.dumps(body),
        status_code=200,
        mimetype="application/json",
        headers={"X-Item": req.route_params["id"]},
    )


@app.route(route="items/special", methods=["GET"])
def special_item(req: func.HttpRequest) -> func.HttpResponse:
    CALLS.append("special_item")
    return func.HttpResponse("special", status_code=203)


@app.route(route="orders/{id:int}/lines/{line?}", methods=["GET", "DELETE"])
def order_line(req: func.HttpRequest) -> func.HttpResponse:
    CALLS.append("order_line")
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


@app.route(route="echo", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def echo(req: func.HttpRequest) -> str:
    CALLS.append("echo")
    return f"{req.headers.get('x-test')}:{req.get_body().decode()}"


@app.route(route="admin/reset", auth_level=func.AuthLevel.ADMIN)
def admin_reset(req: func.HttpRequest) -> func.HttpResponse:
    CALLS.append("admin_reset")
    return func.HttpResponse(status_code=202)


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    CALLS.append("boom")
    raise RuntimeError("secret detail that must not leak")


@app.function_name("context_name")
@app.route(route="ctx", auth_level=func.AuthLevel.ANONYMOUS)
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    CALLS.append("context_name")
    return func.HttpResponse(json.dumps({"name": context.function_name, "id": context.invocation_id}))


@app.route(route="hang", auth_level=func.AuthLevel.ANONYMOUS)
async def hang(req: func.HttpRequest) -> str:
    CALLS.append("hang")
    await asyncio.sleep(60)
    return "too late"
