"""The Dataverse simulator's HTTP surface: the Web API pipeline and the Entra-style token endpoint.

`Simulator(config).app` is an ASGI app for uvicorn. Web API requests pass, in order: URL
length (414), injected faults, bearer-token check (401 + WWW-Authenticate), body size (413),
service protection (429 + Retry-After), configured latency, then the engine under one lock. The `/_sandbox/`
routes are in admin.py, injected faults in faults.py, tokens in tokens.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from sandbox.dataverse import errors as E
from sandbox.dataverse.admin import AdminRoutes
from sandbox.dataverse.batch import execute_batch
from sandbox.dataverse.config import Clock, SimulatorConfig
from sandbox.dataverse.engine import Engine
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.faults import FaultInjector, injected_response
from sandbox.dataverse.limits import ServiceProtection
from sandbox.dataverse.protocol import API_PREFIX, SimRequest, SimResponse, User
from sandbox.dataverse.schema import Schema, load_schema
from sandbox.dataverse.seed import (
    app_user_id,
    seed_reference_data,
)
from sandbox.dataverse.tokens import TokenIssuer
from sandbox.dataverse.webhooks import WebhookService

API_ROOT = API_PREFIX.rstrip("/")
# Dataverse accepts URLs up to 32,768 characters (Microsoft Learn, "Compose HTTP requests and
# handle errors" > "Maximum URL length"). How a longer one fails is UNCONFIRMED (not documented):
# the simulator answers 414 URI Too Long with an OData error body and this code.
MAX_URL_LENGTH = 32_768
URL_TOO_LONG_CODE = "0x80060888"  # UNCONFIRMED
# uvicorn's h11 parser refuses a request head over 16 KB by default, before the app sees it;
# the simulator's servers take heads up to this size so that the URL limit above is the one met.
REQUEST_HEAD_LIMIT = 96 * 1024


def url_too_long(path: str, query: str) -> SimResponse | None:
    """The 414 answer for a request whose URL (percent-encoded path + query) is over the limit."""
    length = len(path) + (len(query) + 1 if query else 0)
    if length <= MAX_URL_LENGTH:
        return None
    return SimResponse.error(
        ODataError(
            414,
            URL_TOO_LONG_CODE,
            f"The request URL is {length} characters long; the maximum is {MAX_URL_LENGTH}.",
        )
    )


class Simulator(AdminRoutes):
    def __init__(self, config: SimulatorConfig | None = None, schema: Schema | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._base_schema = schema or load_schema()
        self.clock = Clock()
        self.lock = threading.RLock()
        self.tokens = TokenIssuer(self.config, self.clock)
        self.protection = ServiceProtection(self.config, self.clock)
        self.faults = FaultInjector()
        self.counters: Counter[str] = Counter()
        self.affinity_cookie_requests = 0  # requests that sent the affinity cookie back
        self.status_counts: Counter[int] = Counter()
        self.webhooks = WebhookService(self)
        self.engine: Engine
        self.reset()
        self.admin = Starlette(routes=self._admin_routes())

    # -- lifecycle ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.engine = Engine(self._base_schema.clone(), self.config, self.clock)
            self.engine.db.on_commit = self.webhooks.on_commit
            self.engine.db.after_commit = self.webhooks.after_commit
            seed_reference_data(self)
            self.counters.clear()
            self.status_counts.clear()
            self.protection.reset()
            self.affinity_cookie_requests = 0
            self.faults.clear()
            self.faults.fired.clear()
            self.webhooks.deliveries.clear()
            with self.webhooks.lock:
                self.webhooks.fail_next = 0  # an injected webhook failure does not outlive a reset

    def close(self) -> None:
        self.webhooks.close()

    def base_url(self, scope: Scope) -> str:
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"127.0.0.1").decode()
        return f"{scope.get('scheme', 'http')}://{host}"

    # -- ASGI ---------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_ROOT):
            await self._api(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"].endswith("/oauth2/v2.0/token"):
            await self._token(scope, receive, send)
            return
        await self.admin(scope, receive, send)

    @property
    def app(self) -> Simulator:
        return self

    async def _token(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        tenant = scope["path"].strip("/").split("/")[0]
        if request.method != "POST":
            await JSONResponse({"error": "invalid_request", "error_description": "POST only"}, 405)(
                scope, receive, send
            )
            return
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        status, payload = self.tokens.issue(tenant, form, self.base_url(scope))
        await JSONResponse(payload, status, headers={"Cache-Control": "no-store"})(scope, receive, send)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_long = url_too_long(
            (scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            scope.get("query_string", b"").decode("latin-1"),
        )
        if too_long is not None:
            await self._send(scope, receive, send, too_long)
            return
        request = Request(scope, receive)
        method = request.method.upper()
        path = scope["path"][len(API_ROOT) :].lstrip("/")
        base = self.base_url(scope)
        fault = self.faults.take(method, path)
        if fault is not None:
            if fault.kind == "drop":
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"value":[', "more_body": True})
                return  # connection closed with an incomplete body
            if fault.kind in ("timeout", "slow"):
                await asyncio.sleep(fault.delay_seconds)
            injected = injected_response(fault, self.config, self.protection)
            if injected is not None:
                await self._send(scope, receive, send, injected)
                return
        client_id = self.tokens.validate(request.headers.get("authorization"))
        if client_id is None:
            await self._send(
                scope,
                receive,
                send,
                SimResponse.json(
                    401,
                    {
                        "error": {
                            "code": E.ACCESS_TOKEN_EXPIRED,
                            "message": "The requested resource requires authentication.",
                        }
                    },
                    {
                        "WWW-Authenticate": "Bearer authorization_uri=https://login.microsoftonline.com/"
                        f"{self.config.tenant_id}/oauth2/authorize"
                    },
                ),
            )
            return
        body = await request.body()
        if len(body) > self.config.max_body_bytes:
            await self._send(
                scope,
                receive,
                send,
                SimResponse.error(
                    ODataError(
                        413,
                        E.REQUEST_TOO_LARGE,
                        f"The request body of {len(body)} bytes exceeds the limit of "
                        f"{self.config.max_body_bytes} bytes.",
                    )
                ),
            )
            return
        if "ARRAffinity" in request.cookies:
            with self.lock:
                self.affinity_cookie_requests += 1
        user = User(app_user_id(client_id), f"app {client_id[:8]}")
        denied = self.protection.admit(user.id)
        if denied is not None:
            await self._send(
                scope, receive, send, SimResponse.error(denied), self.protection.headers(user.id)
            )
            return
        # Execution time charged to the user: the configured latency plus the time the engine
        # spent on the request - not time spent queueing for the simulator's single engine lock.
        charged = {"ms": 0.0}
        try:
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000)
            sim_req = SimRequest(
                method=method,
                path=unquote(path),
                query=scope.get("query_string", b"").decode("latin-1"),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                user=user,
                base_url=base,
            )
            response = await run_in_threadpool(self.dispatch, sim_req, charged)
        finally:
            self.protection.release(user.id, self.config.latency_ms + charged["ms"])
        await self._send(scope, receive, send, response, self.protection.headers(user.id))

    def dispatch(self, req: SimRequest, charged: dict[str, float] | None = None) -> SimResponse:
        key = self._counter_key(req)
        with self.lock:
            started = time.perf_counter()
            try:
                return self._dispatch_locked(req, key)
            finally:
                if charged is not None:
                    charged["ms"] = (time.perf_counter() - started) * 1000

    def _dispatch_locked(self, req: SimRequest, key: str) -> SimResponse:
        self.counters[key] += 1
        if req.path.strip("/") == "$batch":
            try:
                response = execute_batch(self.engine, req)
            except ODataError as exc:
                response = SimResponse.error(exc)
        else:
            response = self.engine.handle(req)
        self.status_counts[response.status] += 1
        return response

    @staticmethod
    def _counter_key(req: SimRequest) -> str:
        path = req.path.strip("/")
        head = path.split("(")[0].split("/")[0]
        if "/Microsoft.Dynamics.CRM." in path:
            head += "/" + path.split("/Microsoft.Dynamics.CRM.")[1]
        return f"{req.method.upper()} {head}"

    async def _send(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        response: SimResponse,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = {
            "OData-Version": "4.0",
            "x-ms-service-request-id": str(uuid.uuid4()),
            # one web server here, but set the affinity cookie as Dataverse does (clients should drop it)
            "Set-Cookie": "ARRAffinity=5f3c9d1e2b4a; Path=/; HttpOnly",
        }
        headers.update(extra or {})
        headers.update(response.headers)
        content_type = headers.pop("Content-Type", None)
        await Response(response.body, response.status, headers=headers, media_type=content_type)(
            scope, receive, send
        )
