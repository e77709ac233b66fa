"""The simulator's `/_sandbox/` surface: reset, seed, tables, acting as a CRM user, counters,
faults, tokens, live config, the clock, webhook deliveries and live schema changes."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from sandbox.dataverse.config import Clock, SimulatorConfig
from sandbox.dataverse.engine import Engine
from sandbox.dataverse.faults import FaultInjector
from sandbox.dataverse.limits import ServiceProtection
from sandbox.dataverse.protocol import API_PREFIX, SimRequest, SimResponse, User, visible
from sandbox.dataverse.seed import CRM_USER_ID, CRM_USER_NAME, seed_demo, sync_bulk_filters
from sandbox.dataverse.tokens import TokenIssuer
from sandbox.dataverse.webhooks import WebhookService


class AdminRoutes:
    """The `/_sandbox/` handlers: a base class of `Simulator`, whose state they read and change."""

    config: SimulatorConfig
    clock: Clock
    lock: threading.RLock
    engine: Engine
    tokens: TokenIssuer
    protection: ServiceProtection
    faults: FaultInjector
    webhooks: WebhookService
    counters: Counter[str]
    status_counts: Counter[int]
    affinity_cookie_requests: int

    if TYPE_CHECKING:  # defined by Simulator

        def base_url(self, scope: Scope) -> str: ...

        def reset(self) -> None: ...

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
            out = [visible(r) for r in rows.values()]
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
