"""The Brightpearl simulator's HTTP layer (starlette): public API routes under
`/public-api/{account}/...`, the OAuth endpoints, and the admin surface under `/_sandbox/...`.

Each API request passes, in order: account check (404), URI length (414), authentication
(401), the rolling-window throttle (503 + throttle headers on every response), injected
faults, optional latency, then the resource handler. Handlers live in one module per
Brightpearl service under `routes/` (the route table in `routes/__init__.py`); `Simulator`
composes them. Answers use the envelope of reference §1.5: `{"response": ...}` or
`{"errors": [{"code", "message"}]}`, never both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.envelope import (
    CompiledRoute,
    Handler,
    Reply,
    Req,
    compile_routes,
    error_reply,
    ok,
    throttled,
)
from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.faults import Fault, FaultInjection, LostAnswer, fault_reply
from sandbox.brightpearl.oauth import OAuthEndpoints, OAuthState
from sandbox.brightpearl.routes import api_routes
from sandbox.brightpearl.routes.accounting import AccountingRoutes
from sandbox.brightpearl.routes.contacts import ContactRoutes
from sandbox.brightpearl.routes.exchange_rates import ExchangeRateRoutes
from sandbox.brightpearl.routes.integration import IntegrationRoutes
from sandbox.brightpearl.routes.orders import OrderRoutes
from sandbox.brightpearl.routes.products import ProductRoutes
from sandbox.brightpearl.routes.warehouse import WarehouseRoutes
from sandbox.brightpearl.state import SimState
from sandbox.brightpearl.throttle import Throttle
from sandbox.brightpearl.webhooks import WebhookDispatcher


class _RawEndpoint:
    """Marks a coroutine as a raw ASGI endpoint (so it can drop connections mid-response)."""

    def __init__(self, handler: Callable[[Scope, Receive, Send], Any]) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)


class Simulator(
    ContactRoutes,
    OrderRoutes,
    ProductRoutes,
    WarehouseRoutes,
    AccountingRoutes,
    ExchangeRateRoutes,
    IntegrationRoutes,
    OAuthEndpoints,
    FaultInjection,
):
    """One simulator instance: config, state, throttle, webhooks, and the ASGI app."""

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        base = config or SimulatorConfig()
        self.config = (
            SimulatorConfig.model_validate({**base.model_dump(), **overrides}) if overrides else base
        )
        self.state = SimState(self.config)
        self.dispatcher = WebhookDispatcher(self.state)
        self.throttle = Throttle(self.config.rate_limit, self.config.rate_window_seconds)
        self.oauth = OAuthState()
        self.faults: list[Fault] = []
        self.lost_answers: list[LostAnswer] = []  # writes applied whose answer a fault swallowed
        self._faults_lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self._routes = self._api_routes()
        self.app = Starlette(
            routes=[
                Route(
                    "/_sandbox/{rest:path}", self._admin, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]
                ),
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/token/{account}", self._token, methods=["POST"]),
                Route("/{account}/oauth/token", self._token, methods=["POST"]),
                Route("/oauth/authorize/{account}", self._authorize, methods=["GET"]),
                Route("/authorize/{account}", self._authorize, methods=["GET"]),
                Route(
                    "/public-api/{account}/{rest:path}",
                    _RawEndpoint(self._api),
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                ),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.dispatcher.start()
        try:
            yield
        finally:
            self.dispatcher.stop()

    # --- JSON --------------------------------------------------------------------------
    def _tz(self) -> timezone:
        offset = self.config.time_offset
        if offset == "Z":
            return UTC
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        return timezone(sign * timedelta(hours=hours, minutes=minutes))

    def render_time(self, value: datetime) -> str:
        text = value.astimezone(self._tz()).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")

    def dumps(self, payload: Any) -> bytes:
        def default(o: Any) -> Any:
            if isinstance(o, datetime):
                return self.render_time(o)
            if isinstance(o, Decimal):
                return str(o)
            if isinstance(o, set):
                return sorted(o)
            raise TypeError(f"cannot encode {type(o).__name__}")

        return json.dumps(payload, default=default, separators=(",", ":")).encode()

    def _response(self, reply: Reply, headers: dict[str, str]) -> Response:
        if reply.payload is None:
            return Response(status_code=reply.status, headers=headers)
        return Response(
            self.dumps(reply.payload),
            status_code=reply.status,
            headers=headers,
            media_type="application/json",
        )

    # --- the public API ----------------------------------------------------------------
    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        account = request.path_params["account"]
        rest = request.path_params["rest"].strip("/")
        method = request.method
        handler, match, name = self._route(method, rest)
        with self._faults_lock:
            self.requests[f"{method} {name}"] = self.requests.get(f"{method} {name}", 0) + 1
        headers: dict[str, str] = {}
        fault: Fault | None = None
        body: Any = None
        try:
            if account not in self.config.accounts:
                raise ApiError(404, "CMNC-404", f"Cannot find the account {account}")
            if len(str(request.url.path)) + len(request.url.query) + 1 > self.config.max_uri_length:
                raise ApiError(414, "CMNC-414", "Request-URI Too Long")
            pool = self._authenticate(request, account)
            admission = self.throttle.admit(pool)
            headers = {
                "brightpearl-requests-remaining": str(admission.remaining),
                "brightpearl-next-throttle-period": str(admission.next_period_ms),
            }
            if not admission.admitted:
                await self._send(scope, receive, send, throttled(), headers)
                return
            fault = self._take_fault(method, rest)
            canned = fault_reply(fault)
            if canned is not None:
                await self._send(scope, receive, send, canned, headers)
                return
            if fault is not None and fault.kind == "drop-before":
                await self._drop(send)
                return
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000)
            if handler is None:
                raise ApiError(404, "CMNC-404", f"Cannot find the resource /{rest}")
            body = await self._body(request)
            req = Req(
                method,
                rest,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                body,
                request.headers.get("host", "127.0.0.1"),
            )
            reply = handler(req, match)
        except ApiError as exc:
            reply = error_reply(exc)
            if not headers and account in self.config.accounts:
                # refused before the throttle (401, 414): report the account pool, unchanged
                remaining, period = self.throttle.peek(account)
                headers = {
                    "brightpearl-requests-remaining": str(remaining),
                    "brightpearl-next-throttle-period": str(period),
                }
        if fault is not None and fault.kind in ("drop", "timeout") and method != "GET" and reply.status < 300:
            # the write was applied but the client never hears of it: kept so that tests can tell
            # what a lost answer created (e.g. addresses no contact references afterwards)
            with self._faults_lock:
                self.lost_answers.append(LostAnswer(method, rest, body, reply))
        if fault is not None and fault.kind == "drop":
            await self._drop(send)
            return
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.seconds)
        await self._send(scope, receive, send, reply, headers)

    async def _send(
        self, scope: Scope, receive: Receive, send: Send, reply: Reply, headers: dict[str, str]
    ) -> None:
        await self._response(reply, headers)(scope, receive, send)

    async def _drop(self, send: Send) -> None:
        """Start a response, send part of it and return: uvicorn closes the connection."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"response":', "more_body": True})

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise bad(f"the request body is not valid JSON: {exc.msg}", "CMNC-010") from exc

    def _route(self, method: str, rest: str) -> tuple[Handler | None, Any, str]:
        for route_method, pattern, handler, name in self._routes:
            if route_method == method:
                match = pattern.fullmatch(rest)
                if match:
                    return handler, match, name
        return None, None, "unknown"

    def _api_routes(self) -> list[CompiledRoute]:
        return compile_routes(api_routes(self))

    def multi_message(self, req: Req, m: re.Match[str]) -> Reply:
        """Up to 10 destructive messages in one request (reference §3.1); one throttle slot."""
        body = req.body if isinstance(req.body, dict) else {}
        mode, on_fail = body.get("processingMode"), body.get("onFail")
        messages = body.get("messages")
        if mode not in ("SEQUENTIAL", "PARALLEL") or on_fail not in ("STOP", "CONTINUE"):
            raise bad("processingMode must be SEQUENTIAL or PARALLEL and onFail STOP or CONTINUE", "CMNC-040")
        if mode == "PARALLEL" and on_fail == "STOP":
            raise bad("PARALLEL processing cannot be combined with onFail STOP", "CMNC-041")
        if not isinstance(messages, list) or not 2 <= len(messages) <= 10:
            raise bad("messages must hold between 2 and 10 messages", "CMNC-042")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("httpMethod") not in (
                "POST",
                "PUT",
                "PATCH",
                "DELETE",
            ):
                raise bad(f"messages[{i}].httpMethod must be POST, PUT, PATCH or DELETE", "CMNC-043")
            if not isinstance(message.get("uri"), str) or not message.get("label"):
                raise bad(f"messages[{i}] needs a label and a uri", "CMNC-044")
        processed, unprocessed, failed = [], [], False
        for message in messages:
            if failed and on_fail == "STOP":
                unprocessed.append(str(message["label"]))
                continue
            uri = message["uri"].strip("/")
            handler, match, _ = self._route(message["httpMethod"], uri)
            try:
                if handler is None:
                    raise ApiError(404, "CMNC-404", f"Cannot find the resource /{uri}")
                inner = handler(Req(message["httpMethod"], uri, {}, {}, message.get("body"), req.host), match)
            except ApiError as exc:
                inner = error_reply(exc)
            if inner.status >= 300:
                failed = True
            processed.append(
                {
                    "label": str(message["label"]),
                    "statusCode": inner.status,
                    "body": {"content": self.dumps(inner.payload).decode() if inner.payload else ""},
                }
            )
        return ok(
            {"processedMessages": processed, "unprocessedMessages": unprocessed},
            status=207 if failed else 200,
        )

    # --- admin surface -----------------------------------------------------------------
    async def _admin(self, request: Request) -> Response:
        from sandbox.brightpearl.admin import handle_admin

        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return JSONResponse({"error": "body is not valid JSON"}, 400)
        try:
            status, payload = handle_admin(
                self, request.method, request.path_params["rest"].strip("/"), dict(request.query_params), body
            )
        except ApiError as exc:
            status, payload = exc.status, {"error": exc.code, "message": exc.message}
        except (ValueError, TypeError, KeyError) as exc:
            status, payload = 400, {"error": "bad-request", "message": str(exc)}
        return Response(self.dumps(payload), status_code=status, media_type="application/json")

    def reset(self, seed: int | None = None) -> None:
        self.state.reset(seed)
        self.dispatcher.reset()
        self.throttle.reset()
        with self._faults_lock:
            self.faults.clear()
            self.lost_answers.clear()
            self.requests.clear()
        with self.oauth.lock:
            self.oauth.codes.clear()
            self.oauth.access.clear()
            self.oauth.refresh.clear()
            self.oauth.grants = 0

    def configure(self, **values: Any) -> SimulatorConfig:
        for key, value in values.items():
            if key not in SimulatorConfig.model_fields:
                raise ValueError(f"unknown setting {key!r}")
            setattr(self.config, key, value)
        self.throttle.configure(self.config.rate_limit, self.config.rate_window_seconds)
        return self.config


def create_app(config: SimulatorConfig | None = None, **overrides: Any) -> Starlette:
    """The ASGI app (uvicorn entry point); the Simulator is at app.state.simulator."""
    sim = Simulator(config, **overrides)
    sim.app.state.simulator = sim
    return sim.app
