"""HTTP triggers of the local host: route templates, methods, function keys and the ASGI app.

Requests under `/<routePrefix>/` are matched against each function's route template
(`items/{id}`, optional `{id?}`, constrained `{id:int}`, catch-all `{*rest}`), checked
against the allowed methods (405) and the auth level (401, the function is not called),
then turned into a real `func.HttpRequest`; the returned `func.HttpResponse` (or str)
becomes the reply. An unhandled exception gives 500 with only an invocation id. A request
body over the host's limit (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, default 100 MB, as the real
host) gets 413 and the function is not called; the limit is enforced while the body is read,
so an oversized (or endless, chunked) body is never buffered whole.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.host.config import HostConfigError
from sandbox.host.index import FunctionInfo, HttpTriggerInfo
from sandbox.host.invocation import InvocationResult

log = logging.getLogger("sandbox.host")

FUNCTION_KEY_SETTING = "LOCAL_FUNCTION_KEY"
MASTER_KEY_SETTING = "LOCAL_MASTER_KEY"
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"
# The documented HTTP request limit (100 MB; FUNCTIONS_REQUEST_BODY_SIZE_LIMIT overrides it,
# Azure/azure-functions-host#7204). The host's source has allowed 210,000,000 bytes since
# azure-functions-host#9471; the documented, lower figure keeps this host no more lenient.
DEFAULT_BODY_LIMIT = 104_857_600

_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "bool": r"(?i:true|false)",
}
_PARAM = re.compile(
    r"^\{(?P<star>\*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<constraint>[a-z]+))?(?P<opt>\?)?\}$"
)


@dataclass(frozen=True)
class HttpRoute:
    function: FunctionInfo
    pattern: re.Pattern[str]
    literal_segments: int
    parameter_segments: int

    @property
    def trigger(self) -> HttpTriggerInfo:
        assert isinstance(self.function.trigger, HttpTriggerInfo)
        return self.function.trigger


def compile_route(function: FunctionInfo) -> HttpRoute:
    """Compile a route template into a regex over the path below the route prefix."""
    assert isinstance(function.trigger, HttpTriggerInfo)
    template = function.trigger.route
    parts = [p for p in template.split("/") if p] if template else []
    regex = ""
    literals = params = 0
    for index, part in enumerate(parts):
        match = _PARAM.match(part)
        if match is None:
            if "{" in part or "}" in part:
                raise HostConfigError(f"function {function.name!r}: route segment {part!r} is not supported")
            regex += "/" + re.escape(part)
            literals += 1
            continue
        params += 1
        name = match["name"]
        if match["star"]:
            if index != len(parts) - 1:
                raise HostConfigError(
                    f"function {function.name!r}: catch-all {{*{name}}} must be the last segment"
                )
            regex += f"(?:/(?P<{name}>.*))?"
            continue
        constraint = match["constraint"]
        if constraint and constraint not in _CONSTRAINTS:
            raise HostConfigError(
                f"function {function.name!r}: route constraint {constraint!r} is not supported"
            )
        body = _CONSTRAINTS.get(constraint or "", r"[^/]+")
        regex += f"(?:/(?P<{name}>{body}))?" if match["opt"] else f"/(?P<{name}>{body})"
    return HttpRoute(function, re.compile(f"^{regex}/?$", re.IGNORECASE), literals, params)


class FunctionKeys:
    """Function and master keys from the app settings; compared in constant time."""

    def __init__(self, environ: Mapping[str, str], functions: list[FunctionInfo]):
        self.function_key = environ.get(FUNCTION_KEY_SETTING) or None
        self.master_key = environ.get(MASTER_KEY_SETTING) or None
        levels = {f.trigger.auth_level for f in functions if isinstance(f.trigger, HttpTriggerInfo)}
        if "FUNCTION" in levels and not (self.function_key or self.master_key):
            raise HostConfigError(
                f"app setting {FUNCTION_KEY_SETTING!r} is not set; FUNCTION-level HTTP functions need a key"
            )
        if "ADMIN" in levels and not self.master_key:
            raise HostConfigError(
                f"app setting {MASTER_KEY_SETTING!r} is not set; ADMIN-level functions need it"
            )

    def allows(self, level: str, presented: str | None) -> bool:
        if level == "ANONYMOUS":
            return True
        if not presented:
            return False
        candidate = presented.encode()
        accepted = [self.master_key]
        if level == "FUNCTION":
            accepted.append(self.function_key)
        # Compare against every key (no early exit) so timing does not reveal which one matched.
        results = [hmac.compare_digest(candidate, key.encode()) for key in accepted if key]
        return any(results)


Invoke = Callable[[FunctionInfo, dict[str, Any], str], Awaitable[InvocationResult]]


AdminInvoke = Callable[[str], Awaitable[tuple[int, dict[str, Any]]]]
ADMIN_FUNCTIONS_PATH = re.compile(r"^/admin/functions/(?P<name>[^/]+)/?$", re.IGNORECASE)


def build_http_app(
    functions: list[FunctionInfo],
    route_prefix: str,
    keys: FunctionKeys,
    invoke: Invoke,
    admin_invoke: AdminInvoke | None = None,
) -> Starlette:
    """The ASGI application serving every HTTP-triggered function.

    `POST /admin/functions/{name}` (master key) runs a non-HTTP function, as the Functions
    host's admin API does; `admin_invoke` decides what that means and answers 202 or an error.
    """
    max_body_bytes = body_limit(os.environ)
    routes = [compile_route(f) for f in functions if isinstance(f.trigger, HttpTriggerInfo)]
    # Literal segments beat parameters, as in ASP.NET routing.
    routes.sort(key=lambda r: (-r.literal_segments, r.parameter_segments))
    prefix = "/" + route_prefix.strip("/") if route_prefix.strip("/") else ""

    async def dispatch(request: Request) -> Response:
        path = request.url.path
        admin = ADMIN_FUNCTIONS_PATH.match(path)
        if admin and admin_invoke is not None and request.method.upper() == "POST":
            presented = request.headers.get(KEY_HEADER) or request.query_params.get(KEY_QUERY)
            if not keys.allows("ADMIN", presented):
                return _json(401, {"error": "Unauthorized"})
            status, body = await admin_invoke(admin["name"])
            return _json(status, body) if body else Response(status_code=status)
        if prefix:
            if not (path == prefix or path.startswith(prefix + "/")):
                return _json(404, {"error": "Not Found"})
            path = path[len(prefix) :]
        matches = [(r, m) for r in routes if (m := r.pattern.match(path or "/"))]
        if not matches and path in ("", "/"):
            matches = [(r, m) for r in routes if (m := r.pattern.match(""))]
        if not matches:
            return _json(404, {"error": "Not Found"})
        method = request.method.upper()
        allowed = [(r, m) for r, m in matches if r.trigger.methods is None or method in r.trigger.methods]
        if not allowed:
            methods = sorted({x for r, _ in matches for x in (r.trigger.methods or ALL_METHODS)})
            return _json(405, {"error": "Method Not Allowed"}, headers={"Allow": ", ".join(methods)})
        route, match = allowed[0]
        presented = request.headers.get(KEY_HEADER) or request.query_params.get(KEY_QUERY)
        if not keys.allows(route.trigger.auth_level, presented):
            return _json(401, {"error": "Unauthorized"})
        body = await read_body_within(request, max_body_bytes)
        if body is None:
            return _json(
                413, {"error": "Payload Too Large", "message": f"request body exceeds {max_body_bytes} bytes"}
            )
        http_request = func.HttpRequest(
            method=method,
            url=str(request.url),
            headers={k: ", ".join(request.headers.getlist(k)) for k in request.headers},
            params=dict(request.query_params),
            route_params={k: v for k, v in match.groupdict().items() if v is not None},
            body=body,
        )
        outcome = await invoke(
            route.function,
            {route.function.trigger_parameter: http_request},
            "This function was programmatically called via the host APIs.",
        )
        if outcome.succeeded:
            try:
                return _to_response(outcome.result)
            except TypeError:
                log.error(
                    "function %s returned %s, not an HttpResponse or str (Id=%s)",
                    route.function.name,
                    type(outcome.result).__name__,
                    outcome.invocation_id,
                )
        return _json(500, {"error": "Internal Server Error", "invocationId": outcome.invocation_id})

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=list(ALL_METHODS))])


def body_limit(environ: Mapping[str, str]) -> int:
    """The request body limit in bytes (app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)."""
    raw = (environ.get(BODY_LIMIT_SETTING) or "").strip()
    if not raw:
        return DEFAULT_BODY_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise HostConfigError(
            f"app setting {BODY_LIMIT_SETTING!r} must be a positive number of bytes, got {raw!r}"
        )
    return int(raw)


async def read_body_within(request: Request, limit: int) -> bytes | None:
    """The body, read chunk by chunk; None as soon as it is known to exceed `limit` bytes
    (from Content-Length, or while reading), without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _to_response(result: Any) -> Response:
    if result is None:
        return Response(status_code=204)
    if isinstance(result, str | bytes):
        return Response(content=result, status_code=200, media_type="text/plain")
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers.items())
        if not any(k.lower() == "content-type" for k in headers):
            media = result.mimetype or "text/plain"
            headers["Content-Type"] = f"{media}; charset={result.charset}" if result.charset else media
        return Response(content=result.get_body(), status_code=result.status_code, headers=headers)
    raise TypeError(f"unsupported HTTP function result {type(result).__name__}")


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)
