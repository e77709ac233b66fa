"""The Dataverse simulator's HTTP surface: Web API, Entra-style token endpoint, admin routes.

`Simulator(config).app` is an ASGI app for uvicorn. Web API requests pass, in order: injected
faults, bearer-token check (401 + WWW-Authenticate), body size (413), service protection
(429 + Retry-After), configured latency, then the engine under one lock.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.dataverse import errors as E
from sandbox.dataverse.batch import execute_batch
from sandbox.dataverse.config import Clock, SimulatorConfig
from sandbox.dataverse.engine import Engine
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.limits import FaultInjector, ServiceProtection, TokenIssuer
from sandbox.dataverse.protocol import API_PREFIX, SimRequest, SimResponse, User
from sandbox.dataverse.schema import Schema, load_schema
from sandbox.dataverse.seed import (
    CRM_USER_ID,
    CRM_USER_NAME,
    app_user_id,
    seed_demo,
    seed_reference_data,
    sync_bulk_filters,
)
from sandbox.dataverse.webhooks import WebhookService

API_ROOT = API_PREFIX.rstrip("/")


class Simulator:
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
            self.webhooks.deliveries.clear()

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
            if fault.kind == "429":
                err = self.protection._error(
                    fault.code,
                    {
                        "requests": self.config.request_limit,
                        "execution": self.config.execution_limit_ms,
                        "concurrency": self.config.concurrency_limit,
                    }[fault.code],
                    fault.retry_after,
                )
                await self._send(scope, receive, send, SimResponse.error(err))
                return
            if fault.kind in ("502", "503", "504", "timeout"):
                status = 504 if fault.kind == "timeout" else int(fault.kind)
                await self._send(
                    scope,
                    receive,
                    send,
                    SimResponse.json(
                        status, {"error": {"code": "", "message": f"Injected fault: HTTP {status}"}}
                    ),
                )
                return
            if fault.kind == "413":
                await self._send(
                    scope,
                    receive,
                    send,
                    SimResponse.error(
                        ODataError(413, E.REQUEST_TOO_LARGE, "The request is too large (injected fault).")
                    ),
                )
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

    # -- admin surface -------------------------------------------------------------------------------
    def _admin_routes(self) -> list[Route]:
        return [
            Route("/_sandbox/health", self._health, methods=["GET"]),
            Route("/_sandbox/reset", self._reset, methods=["POST"]),
            Route("/_sandbox/seed", self._seed, methods=["POST"]),
            Route("/_sandbox/tables", self._tables, methods=["GET"]),
            Route("/_sandbox/tables/{table}", self._table_rows, methods=["GET"]),
            Route("/_sandbox/crm", self._crm, methods=["POST"]),
            Route("/_sandbox/counters", self._counters, methods=["GET"]),
            Route("/_sandbox/counters/reset", self._counters_reset, methods=["POST"]),
            Route("/_sandbox/faults", self._faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/tokens/expire", self._expire_tokens, methods=["POST"]),
            Route("/_sandbox/config", self._config, methods=["GET", "PATCH"]),
            Route("/_sandbox/clock/advance", self._advance, methods=["POST"]),
            Route("/_sandbox/webhooks/deliveries", self._deliveries, methods=["GET"]),
            Route("/_sandbox/webhooks/fail", self._fail_webhooks, methods=["POST"]),
            Route("/_sandbox/webhooks/drain", self._drain, methods=["POST"]),
            Route("/_sandbox/schema", self._schema, methods=["POST"]),
        ]

    @staticmethod
    async def _json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    @staticmethod
    def _bad(message: str) -> JSONResponse:
        return JSONResponse({"error": message}, 400)

    async def _health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service_root": f"{self.base_url(request.scope)}{API_PREFIX}"})

    async def _reset(self, request: Request) -> JSONResponse:
        data = await self._json(request)
        try:
            if data.get("config"):
                self.config.update(data["config"])
        except ValueError as exc:
            return self._bad(str(exc))
        await run_in_threadpool(self.reset)
        return JSONResponse({"status": "reset"})

    async def _seed(self, request: Request) -> JSONResponse:
        data = await self._json(request)
        counts = {
            k: int(data.get(k, d))
            for k, d in (("accounts", 5), ("contacts", 20), ("products", 10), ("orders", 5), ("cases", 3))
        }
        seed = int(data.get("seed", 1))

        def run() -> dict[str, int]:
            with self.lock:
                return seed_demo(self, counts, seed)

        return JSONResponse({"created": await run_in_threadpool(run)})

    async def _tables(self, request: Request) -> JSONResponse:
        with self.lock:
            return JSONResponse({name: len(rows) for name, rows in self.engine.db.rows.items()})

    async def _table_rows(self, request: Request) -> JSONResponse:
        name = request.path_params["table"]
        with self.lock:
            rows = self.engine.db.rows.get(name)
            if rows is None:
                return JSONResponse({"error": f"unknown table {name!r}"}, 404)
            out = [{k: v for k, v in r.items() if not k.startswith("__")} for r in rows.values()]
        return JSONResponse({"table": name, "rows": out})

    async def _crm(self, request: Request) -> Response:
        """Act as an interactive CRM user (fires webhooks, feeds change tracking; no throttling)."""
        data = await self._json(request)
        method = str(data.get("method", "PATCH")).upper()
        target = str(data.get("path", "")).lstrip("/")
        if not target:
            return self._bad("path is required, e.g. contacts(<id>)")
        path, _, query = target.partition("?")
        body = data.get("body")
        headers = {k.lower(): str(v) for k, v in (data.get("headers") or {}).items()}
        req = SimRequest(
            method,
            path,
            query,
            headers,
            json.dumps(body).encode() if body is not None else b"",
            User(CRM_USER_ID, CRM_USER_NAME, "interactive"),
            self.base_url(request.scope),
        )

        def run() -> SimResponse:
            with self.lock:
                return self.engine.handle(req)

        resp = await run_in_threadpool(run)
        payload = (
            json.loads(resp.body)
            if resp.body and resp.headers.get("Content-Type", "").startswith("application/json")
            else None
        )
        return JSONResponse({"status": resp.status, "headers": resp.headers, "body": payload})

    async def _counters(self, request: Request) -> JSONResponse:
        with self.lock:
            calls = dict(self.counters)
            statuses = {str(k): v for k, v in self.status_counts.items()}
        return JSONResponse(
            {
                "api_calls": sum(calls.values()),
                "calls": calls,
                "statuses": statuses,
                "tokens_issued": self.tokens.issued,
                "affinity_cookie_requests": self.affinity_cookie_requests,
                "service_protection": self.protection.snapshot(),
                "faults": self.faults.snapshot(),
            }
        )

    async def _counters_reset(self, request: Request) -> JSONResponse:
        with self.lock:
            self.counters.clear()
            self.status_counts.clear()
        self.protection.reset()
        return JSONResponse({"status": "reset"})

    async def _faults(self, request: Request) -> JSONResponse:
        if request.method == "DELETE":
            self.faults.clear()
        elif request.method == "POST":
            try:
                self.faults.add(await self._json(request))
            except (ValueError, TypeError) as exc:
                return self._bad(str(exc))
        return JSONResponse(self.faults.snapshot())

    async def _expire_tokens(self, request: Request) -> JSONResponse:
        return JSONResponse({"expired": self.tokens.expire_all()})

    async def _config(self, request: Request) -> JSONResponse:
        if request.method == "PATCH":
            try:
                self.config.update(await self._json(request))
            except ValueError as exc:
                return self._bad(str(exc))
        return JSONResponse(self.config.as_dict())

    async def _advance(self, request: Request) -> JSONResponse:
        data = await self._json(request)
        seconds = data.get("seconds")
        if not isinstance(seconds, (int, float)) or seconds < 0:
            return self._bad("seconds must be a non-negative number")
        self.clock.advance(float(seconds))
        return JSONResponse({"offset_seconds": self.clock.offset})

    async def _deliveries(self, request: Request) -> JSONResponse:
        return JSONResponse({"deliveries": self.webhooks.snapshot()})

    async def _fail_webhooks(self, request: Request) -> JSONResponse:
        data = await self._json(request)
        count = data.get("count", 1)
        if not isinstance(count, int) or count < 0:
            return self._bad("count must be a non-negative integer")
        with self.webhooks.lock:
            self.webhooks.fail_next = count
        return JSONResponse({"fail_next": count})

    async def _drain(self, request: Request) -> JSONResponse:
        data = await self._json(request)
        ok = await run_in_threadpool(self.webhooks.drain, float(data.get("timeout", 30)))
        return JSONResponse({"drained": ok}, 200 if ok else 504)

    async def _schema(self, request: Request) -> JSONResponse:
        """Change the live schema: drop a column or key, set bulk support or change tracking."""
        data = await self._json(request)
        with self.lock:
            table = self.engine.schema.tables.get(str(data.get("table")))
            if table is None:
                return self._bad(f"unknown table {data.get('table')!r}")
            if "drop_column" in data and table.columns.pop(str(data["drop_column"]), None) is None:
                return self._bad(f"{table.logical_name} has no column {data['drop_column']!r}")
            if "drop_key" in data and table.alternate_keys.pop(str(data["drop_key"]), None) is None:
                return self._bad(f"{table.logical_name} has no key {data['drop_key']!r}")
            if "bulk" in data:
                table.bulk = list(data["bulk"])
                sync_bulk_filters(self, table)
            if "change_tracking" in data:
                table.change_tracking = bool(data["change_tracking"])
            return JSONResponse(
                {
                    "table": table.logical_name,
                    "bulk": table.bulk,
                    "keys": table.alternate_keys,
                    "change_tracking": table.change_tracking,
                }
            )
