"""The Brightpearl simulator's HTTP layer (starlette): public API routes under
`/public-api/{account}/...`, the OAuth endpoints, and the admin surface under `/_sandbox/...`.

Each API request passes, in order: account check (404), URI length (414), authentication
(401), the rolling-window throttle (503 + throttle headers on every response), injected
faults, optional latency, then the resource handler. Answers use the envelope of reference
§1.5: `{"response": ...}` or `{"errors": [{"code", "message"}]}`, never both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.brightpearl import search as searches
from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.state import ApiError, SimState, bad
from sandbox.brightpearl.throttle import Throttle
from sandbox.brightpearl.webhooks import WebhookDispatcher, WebhookFaults
from shared.brightpearl.auth import sign_token
from shared.brightpearl.idset import IdSetError, format_id_set, parse_id_set

NOT_AUTHENTICATED = "Not authenticated. You must provide a valid authentication token."
TOO_MANY = "You have sent too many requests. Please wait before sending another request"
IDS = r"(?P<ids>\d[\d,.\-]*)"


# ----------------------------------------------------------------------------- plumbing
@dataclass
class Req:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any
    host: str


@dataclass
class Reply:
    status: int
    payload: Any  # full JSON document (envelope), or None for an empty body


def ok(value: Any = None, status: int = 200, **extra: Any) -> Reply:
    payload: dict[str, Any] = {} if value is None else {"response": value}
    payload.update(extra)
    return Reply(status, payload)


@dataclass
class Fault:
    kind: str
    remaining: int
    seconds: float = 0.0
    path: str | None = None
    method: str | None = None


FAULT_KINDS = {"503", "500", "throttle", "timeout", "slow", "drop", "drop-before", "401"}


@dataclass
class OAuthState:
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    grants: int = 0


class _RawEndpoint:
    """Marks a coroutine as a raw ASGI endpoint (so it can drop connections mid-response)."""

    def __init__(self, handler: Callable[[Scope, Receive, Send], Any]) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)


def _ids(text: str, limit: int | None = None) -> list[int]:
    try:
        ids = parse_id_set(text, max_ids=1_000_000)
    except IdSetError as exc:
        raise bad(f"invalid ID set {text!r}: {exc}", "CMNC-030") from exc
    if limit is not None and len(ids) > limit:
        raise bad(f"the ID set names {len(ids)} resources; at most {limit} per request", "CMNC-031")
    return ids


class Simulator:
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
                await self._send(scope, receive, send, Reply(503, {"response": TOO_MANY}), headers)
                return
            fault = self._take_fault(method, rest)
            if fault is not None:
                if fault.kind == "throttle":
                    await self._send(scope, receive, send, Reply(503, {"response": TOO_MANY}), headers)
                    return
                if fault.kind == "503":
                    await self._send(
                        scope,
                        receive,
                        send,
                        Reply(503, {"response": "Service Unavailable: Brightpearl is down for maintenance"}),
                        headers,
                    )
                    return
                if fault.kind == "500":
                    await self._send(
                        scope,
                        receive,
                        send,
                        Reply(
                            500,
                            {
                                "errors": [
                                    {"code": "CMNU-003", "message": "An internal server error has occurred"}
                                ]
                            },
                        ),
                        headers,
                    )
                    return
                if fault.kind == "401":
                    await self._send(
                        scope, receive, send, Reply(401, {"response": NOT_AUTHENTICATED}), headers
                    )
                    return
                if fault.kind == "drop-before":
                    await self._drop(send)
                    return
                if fault.kind == "slow":
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
            reply = self._error(exc)
            if not headers and account in self.config.accounts:
                # refused before the throttle (401, 414): report the account pool, unchanged
                remaining, period = self.throttle.peek(account)
                headers = {
                    "brightpearl-requests-remaining": str(remaining),
                    "brightpearl-next-throttle-period": str(period),
                }
        if fault is not None and fault.kind == "drop":
            await self._drop(send)
            return
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.seconds)
        await self._send(scope, receive, send, reply, headers)

    def _error(self, exc: ApiError) -> Reply:
        if exc.status == 401:
            return Reply(401, {"response": NOT_AUTHENTICATED})
        return Reply(exc.status, {"errors": [{"code": exc.code, "message": exc.message}]})

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

    def _authenticate(self, request: Request, account: str) -> str:
        h = request.headers
        config = self.config
        app_ref = h.get("brightpearl-app-ref")
        auth = h.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            with self.oauth.lock:
                info = self.oauth.access.get(token)
            if (
                info is None
                or info["expires"] <= time.time()
                or info["account"] != account
                or app_ref != config.app_ref
                or h.get("brightpearl-dev-ref") != config.dev_ref
            ):
                raise ApiError(401, "GWY-401", NOT_AUTHENTICATED)
            return f"{account}|dev:{config.dev_ref}"
        if app_ref != config.app_ref:
            raise ApiError(401, "GWY-401", NOT_AUTHENTICATED)
        account_token = h.get("brightpearl-account-token")
        staff_token = h.get("brightpearl-staff-token")
        dev = h.get("brightpearl-dev-ref")
        if dev and config.developer_secret:
            # public app: the account token must be signed with the developer secret (§2.3)
            expected = sign_token(config.account_token, config.developer_secret)
            if dev == config.dev_ref and account_token and hmac.compare_digest(account_token, expected):
                return f"{account}|dev:{dev}"
            raise ApiError(401, "GWY-401", NOT_AUTHENTICATED)
        if account_token == config.account_token or (
            config.staff_token and staff_token == config.staff_token
        ):
            return f"{account}|dev:{dev}" if dev else account
        raise ApiError(401, "GWY-401", NOT_AUTHENTICATED)

    def _take_fault(self, method: str, rest: str) -> Fault | None:
        with self._faults_lock:
            for fault in self.faults:
                if fault.remaining <= 0:
                    continue
                if fault.method and fault.method != method:
                    continue
                if fault.path and not _under(rest, fault.path):
                    continue
                fault.remaining -= 1
                return fault
            return None

    def _route(self, method: str, rest: str) -> tuple[Callable[[Req, re.Match[str]], Reply] | None, Any, str]:
        for route_method, pattern, handler, name in self._routes:
            if route_method == method:
                match = pattern.fullmatch(rest)
                if match:
                    return handler, match, name
        return None, None, "unknown"

    def _api_routes(self) -> list[tuple[str, re.Pattern[str], Callable[[Req, re.Match[str]], Reply], str]]:
        table = [
            # contacts
            ("GET", rf"contact-service/contact(?:/{IDS})?", self.get_contacts),
            ("POST", r"contact-service/contact", self.post_contact),
            ("PATCH", r"contact-service/contact/(?P<id>\d+)", self.patch_contact),
            ("GET", r"contact-service/contact/(?P<id>\d+)/custom-field", self.get_contact_custom_fields),
            ("PATCH", r"contact-service/contact/(?P<id>\d+)/custom-field", self.patch_contact_custom_fields),
            ("PUT", r"contact-service/contact/(?P<id>\d+)/postal-address", self.put_contact_addresses),
            ("POST", rf"contact-service/contact/{IDS}/tag/(?P<tag>\d+)", self.post_contact_tag),
            ("DELETE", r"contact-service/contact/(?P<id>\d+)/tag/(?P<tag>\d+)", self.delete_contact_tag),
            ("GET", r"contact-service/contact-search", self.search),
            ("GET", r"contact-service/contact-search/meta-data", self.search_meta),
            ("POST", r"contact-service/postal-address", self.post_address),
            ("GET", rf"contact-service/postal-address(?:/{IDS})?", self.get_addresses),
            ("PUT", r"contact-service/postal-address/(?P<id>\d+)", self.put_address),
            ("GET", rf"contact-service/contact-group(?:/{IDS})?", self.get_groups),
            ("POST", r"contact-service/contact-group", self.post_group),
            ("POST", r"contact-service/contact-group/(?P<id>\d+)/member", self.post_group_members),
            ("GET", rf"contact-service/tag(?:/{IDS})?", self.get_tags),
            ("POST", r"contact-service/tag", self.post_tag),
            # orders
            ("POST", r"order-service/sales-order", self.post_sales_order),
            ("GET", rf"order-service/sales-order/{IDS}", self.get_orders),
            ("OPTIONS", rf"order-service/(?:sales-order|order)/{IDS}", self.options_orders),
            ("POST", r"order-service/order", self.post_order),
            ("GET", rf"order-service/order/{IDS}", self.get_orders),
            ("POST", r"order-service/order/(?P<id>\d+)/row", self.post_order_row),
            ("PATCH", r"order-service/order/(?P<id>\d+)/row/(?P<row>\d+)", self.patch_order_row),
            ("PUT", r"order-service/order/(?P<id>\d+)/status", self.put_order_status),
            ("POST", r"order-service/order/(?P<id>\d+)/note", self.post_order_note),
            ("GET", r"order-service/order/(?P<id>\d+)/note", self.get_order_notes),
            ("GET", r"order-service/order/(?P<id>\d+)/custom-field", self.get_order_custom_fields),
            ("PATCH", r"order-service/order/(?P<id>\d+)/custom-field", self.patch_order_custom_fields),
            ("GET", rf"order-service/order-status(?:/{IDS})?", self.get_order_statuses),
            ("GET", r"order-service/order-search", self.search),
            ("GET", r"order-service/order-search/meta-data", self.search_meta),
            ("GET", rf"order-service/sale/custom-field-meta-data(?:/{IDS})?", self.get_custom_field_meta),
            ("POST", r"order-service/sales-credit", self.post_sales_credit),
            ("GET", r"order-service/sales-credit(?:/(?P<ids>[^/]*))?", self.get_sales_credits),
            # products
            ("GET", r"product-service/product(?:/(?P<ids>[^/]*))?", self.get_products),
            ("POST", r"product-service/product", self.post_product),
            ("PUT", r"product-service/product/(?P<id>\d+)", self.put_product),
            ("OPTIONS", rf"product-service/product/{IDS}", self.options_products),
            ("GET", r"product-service/product-search", self.search),
            ("GET", r"product-service/product-search/meta-data", self.search_meta),
            (
                "GET",
                rf"product-service/product-price/{IDS}(?:/price-list(?:/(?P<lists>\d[\d,.\-]*))?)?",
                self.get_product_prices,
            ),
            ("PUT", r"product-service/product-price/(?P<id>\d+)/price-list", self.put_product_prices),
            ("GET", rf"product-service/price-list(?:/{IDS})?", self.get_price_lists),
            # warehouse
            ("GET", rf"warehouse-service/warehouse(?:/{IDS})?", self.get_warehouses),
            ("GET", rf"warehouse-service/product-availability/{IDS}", self.get_availability),
            ("POST", r"warehouse-service/order/(?P<id>\d+)/goods-note/goods-out", self.post_goods_out),
            (
                "GET",
                rf"warehouse-service/order/(?P<orders>\*|\d[\d,.\-]*)/goods-note/goods-out(?:/{IDS})?",
                self.get_goods_out,
            ),
            ("PUT", r"warehouse-service/goods-note/goods-out/(?P<id>\d+)", self.put_goods_out),
            ("POST", r"warehouse-service/goods-note/goods-out/(?P<id>\d+)/event", self.post_goods_out_event),
            ("GET", r"warehouse-service/goods-note/goods-out-search", self.search),
            ("POST", r"warehouse-service/warehouse/(?P<id>\d+)/stock-correction", self.post_stock_correction),
            # accounting
            ("POST", r"accounting-service/customer-payment", self.post_payment),
            ("GET", r"accounting-service/customer-payment-search", self.search),
            ("POST", r"accounting-service/(?:journal|journal-entry)", self.post_journal),
            ("GET", rf"accounting-service/journal/{IDS}", self.get_journals),
            ("GET", rf"accounting-service/tax-code(?:/{IDS})?", self.get_tax_codes),
            # integration
            ("GET", rf"integration-service/webhook(?:/{IDS})?", self.get_webhooks),
            ("POST", r"integration-service/webhook", self.post_webhook),
            ("DELETE", rf"integration-service/webhook/{IDS}", self.delete_webhooks),
            ("POST", r"integration-service/webhook/(?P<id>\d+)/simulate", self.simulate_webhook),
            ("GET", r"integration-service/account-configuration", self.get_account_configuration),
            ("POST", r"multi-message", self.multi_message),
        ]
        out = []
        for method, pattern, handler in table:
            name = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.replace("(?:/", "[/").replace(")?", "]"))
            out.append((method, re.compile(pattern), handler, name))
        return out

    # --- helpers for handlers ----------------------------------------------------------
    def _found(self, items: list[Any], what: str) -> Reply:
        if not items:
            raise ApiError(404, "CMNC-404", f"No {what} Found")
        return ok(items)

    def addresses_by_contact(self) -> dict[int, list[dict[str, Any]]]:
        """Every postal address grouped by owning contact (built once per request, not per contact)."""
        grouped: dict[int, list[dict[str, Any]]] = {}
        for address in self.state.addresses.values():
            grouped.setdefault(address["contactId"], []).append(address)
        return grouped

    def render_contact(
        self, record: dict[str, Any], addresses: dict[int, list[dict[str, Any]]] | None
    ) -> dict[str, Any]:
        out = {k: v for k, v in record.items() if not k.startswith("_")}
        out["contactTags"] = ",".join(str(t) for t in sorted(record["_tags"]))
        if addresses is not None:
            out["postalAddresses"] = list(addresses.get(record["contactId"], []))
        return out

    def render_order(self, record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        out["orderRows"] = {
            rid: {k: v for k, v in row.items() if not k.startswith("_")}
            for rid, row in record["orderRows"].items()
        }
        out["orderStatus"] = dict(record["orderStatus"])
        return out

    # --- contacts ----------------------------------------------------------------------
    def get_contacts(self, req: Req, m: re.Match[str]) -> Reply:
        """Contact GET pages instead of failing above the limit (reference §5.1)."""
        limit = self.config.contact_get_limit
        with self.state.lock:
            ids = _ids(m["ids"]) if m["ids"] else sorted(self.state.contacts)
            if req.params.get("sort", "").upper() == "CONTACTID.DESC":
                ids = sorted(ids, reverse=True)
            present = [i for i in ids if i in self.state.contacts]
            try:
                first = int(req.params.get("firstResult", 1))
                size = min(int(req.params.get("pageSize", limit)), limit)
            except ValueError as exc:
                raise bad("firstResult and pageSize must be integers", "CMNC-024") from exc
            page = present[first - 1 : first - 1 + size]
            addresses = (
                self.addresses_by_contact()
                if "postalAddresses" in req.params.get("includeOptional", "")
                else None
            )
            items = [self.render_contact(self.state.contacts[i], addresses) for i in page]
        if not items:
            raise ApiError(404, "CMNC-404", "No Contact Found")
        pagination = {
            "resultsAvailable": len(present),
            "resultsReturned": len(items),
            "firstResult": first,
            "lastResult": first + len(items) - 1,
            "morePagesAvailable": first - 1 + len(items) < len(present),
        }
        return ok(
            items, pagination=pagination, sorting={"contactId": "DESC" if ids and ids[0] > ids[-1] else "ASC"}
        )

    def post_contact(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_contact(req.body or {}))

    def patch_contact(self, req: Req, m: re.Match[str]) -> Reply:
        record = self.state.patch_contact(int(m["id"]), req.body)
        with self.state.lock:
            return ok([self.render_contact(record, None)])

    def get_contact_custom_fields(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            self.state.contact(int(m["id"]))
            return ok(dict(self.state.contact_custom_fields.get(int(m["id"]), {})))

    def patch_contact_custom_fields(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.patch_contact_custom_fields(int(m["id"]), req.body))

    def put_contact_addresses(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.link_addresses(int(m["id"]), req.body)
        return ok({})

    def post_contact_tag(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.tag_contacts(_ids(m["ids"], self.config.get_limit), int(m["tag"]))
        return ok({})

    def delete_contact_tag(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.untag_contact(int(m["id"]), int(m["tag"]))
        return Reply(200, None)

    def post_address(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_address(req.body or {}))

    def get_addresses(self, req: Req, m: re.Match[str]) -> Reply:
        if not m["ids"]:
            raise bad("an ID set is required for postal-address GET", "CNTC-200")
        with self.state.lock:
            items = [
                dict(self.state.addresses[i])
                for i in _ids(m["ids"], self.config.get_limit)
                if i in self.state.addresses
            ]
        return self._found(items, "Postal Address")

    def put_address(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.update_address(int(m["id"]), req.body or {})
        return ok({})

    def get_groups(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = _ids(m["ids"]) if m["ids"] else sorted(self.state.groups)
            items = [
                {k: (sorted(v) if isinstance(v, set) else v) for k, v in self.state.groups[i].items()}
                for i in ids
                if i in self.state.groups
            ]
        return self._found(items, "Contact Group")

    def post_group(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_group(req.body))

    def post_group_members(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.add_group_members(int(m["id"]), req.body)
        return ok({})

    def get_tags(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = _ids(m["ids"]) if m["ids"] else sorted(self.state.tags)
            items = [dict(self.state.tags[i]) for i in ids if i in self.state.tags]
        return self._found(items, "Tag")

    def post_tag(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_tag(req.body))

    # --- search ------------------------------------------------------------------------
    def search(self, req: Req, m: re.Match[str]) -> Reply:
        response, reference = searches.run_search(self.state, "/" + req.path, req.params)
        payload: dict[str, Any] = {"response": response, "reference": reference}
        return Reply(200, payload)

    def search_meta(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(searches.search_meta("/" + req.path.removesuffix("/meta-data")))

    # --- orders ------------------------------------------------------------------------
    def post_sales_order(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_sales_order(req.body or {}, "SO"))

    def post_sales_credit(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_sales_order(req.body or {}, "SC"))

    def post_order(self, req: Req, m: re.Match[str]) -> Reply:
        """Generic order POST: header only, rows come via /order/{id}/row (reference §6.3)."""
        body = req.body or {}
        code = body.get("orderTypeCode")
        if code not in ("SO", "SC"):
            raise bad(f"orderTypeCode {code!r} must be SO or SC in this simulator", "ORDC-001")
        parties = body.get("parties") or {}
        customer = (parties.get("customer") or {}).get("contactId")
        with self.state.lock:
            oid = self.state.create_sales_order(
                {
                    "customer": {"id": customer},
                    "ref": body.get("reference", ""),
                    "statusId": (body.get("orderStatus") or {}).get(
                        "orderStatusId", self.state.default_status[code]
                    ),
                    "warehouseId": body.get("warehouseId", 2),
                    "parentId": body.get("parentOrderId", 0),
                    "rows": [{"name": "placeholder", "quantity": 1, "taxCode": "N", "net": 0, "tax": 0}],
                },
                code,
                quiet=True,
            )
            self.state.orders[oid]["orderRows"].clear()
            self.state._touch_order(self.state.orders[oid], "order.created")
        return ok(oid)

    def post_order_row(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.add_row(int(m["id"]), req.body))

    def get_orders(self, req: Req, m: re.Match[str]) -> Reply:
        kind = "SO" if req.path.startswith("order-service/sales-order") else None
        with self.state.lock:
            items = [
                self.render_order(self.state.orders[i])
                for i in _ids(m["ids"], self.config.get_limit)
                if i in self.state.orders and (kind is None or self.state.orders[i]["orderTypeCode"] == kind)
            ]
            if "customFields" in req.params.get("includeOptional", ""):
                for item in items:
                    item["customFields"] = self.state.render_custom_fields(item["id"])
        if not items and self.config.order_get_empty == "404":
            raise ApiError(404, "CMNC-404", "No Order Found")
        return ok(items)

    def options_orders(self, req: Req, m: re.Match[str]) -> Reply:
        return self._options(req, m, self.state.orders, "/" + req.path.split("/")[1])

    def _options(self, req: Req, m: re.Match[str], table: dict[int, Any], resource: str) -> Reply:
        with self.state.lock:
            present = [i for i in _ids(m["ids"]) if i in table]
        limit = self.config.get_limit
        uris = [f"{resource}/{format_id_set(present[i : i + limit])}" for i in range(0, len(present), limit)]
        return ok({"getUris": uris})

    def patch_order_row(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.patch_row(int(m["id"]), int(m["row"]), req.body))

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
                inner = self._error(exc)
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

    def put_order_status(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.set_order_status(int(m["id"]), req.body)
        return ok({})

    def post_order_note(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.add_note(int(m["id"]), req.body))

    def get_order_notes(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            self.state.order(int(m["id"]))
            return self._found(list(self.state.order_notes.get(int(m["id"]), [])), "Order Note")

    def get_order_custom_fields(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            self.state.order(int(m["id"]))
            return ok(self.state.render_custom_fields(int(m["id"])))

    def patch_order_custom_fields(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.patch_order_custom_fields(int(m["id"]), req.body))

    def get_order_statuses(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = _ids(m["ids"]) if m["ids"] else sorted(self.state.order_statuses)
            items = [dict(self.state.order_statuses[i]) for i in ids if i in self.state.order_statuses]
        items.sort(key=lambda s: (s["orderTypeCode"], s["sortOrder"]))
        return self._found(items, "Order Status")

    def get_custom_field_meta(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            items = list(self.state.order_custom_field_meta.values())
        if m["ids"]:
            wanted = set(_ids(m["ids"]))
            items = [i for i in items if i["id"] in wanted]
        return self._found(items, "Custom Field")

    def get_sales_credits(self, req: Req, m: re.Match[str]) -> Reply:
        if not m["ids"]:
            raise bad("an ID set is required for sales-credit GET", "ORDC-070")
        ids = _ids(m["ids"], self.config.get_limit)
        with self.state.lock:
            items = [
                self.render_order(self.state.orders[i])
                for i in ids
                if i in self.state.orders and self.state.orders[i]["orderTypeCode"] == "SC"
            ]
        if not items:
            raise ApiError(404, "CMNC-404", "No Sales Credit Found")
        return ok(items, status=207 if len(items) < len(ids) else 200)

    # --- products ----------------------------------------------------------------------
    def get_products(self, req: Req, m: re.Match[str]) -> Reply:
        if not m["ids"]:
            raise bad("an ID set is required for product GET", "PRDC-001")
        with self.state.lock:
            items = [
                dict(self.state.products[i])
                for i in _ids(m["ids"], self.config.get_limit)
                if i in self.state.products
            ]
        return self._found(items, "Product")

    def post_product(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_product(req.body or {}))

    def put_product(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.update_product(int(m["id"]), req.body or {}, req.headers.get("if-match"))
        return ok({})

    def options_products(self, req: Req, m: re.Match[str]) -> Reply:
        return self._options(req, m, self.state.products, "/product")

    def get_product_prices(self, req: Req, m: re.Match[str]) -> Reply:
        lists = set(_ids(m["lists"])) if m["lists"] else None
        with self.state.lock:
            items = []
            for pid in _ids(m["ids"], self.config.get_limit):
                if pid not in self.state.products:
                    continue
                entries = [
                    {
                        "priceListId": plid,
                        "currencyCode": self.state.price_lists[plid]["currencyCode"],
                        "currencyId": self.state.price_lists[plid]["currencyId"],
                        "sku": self.state.products[pid]["identity"].get("sku", ""),
                        "quantityPrice": dict(prices),
                    }
                    for plid, prices in sorted(self.state.prices.get(pid, {}).items())
                    if lists is None or plid in lists
                ]
                items.append({"productId": pid, "priceLists": entries})
        return self._found(items, "Product Price")

    def put_product_prices(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.set_prices(int(m["id"]), req.body)
        return ok({})

    def get_price_lists(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = _ids(m["ids"]) if m["ids"] else sorted(self.state.price_lists)
            items = [dict(self.state.price_lists[i]) for i in ids if i in self.state.price_lists]
        return self._found(items, "Price List")

    # --- warehouse ---------------------------------------------------------------------
    def get_warehouses(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = _ids(m["ids"]) if m["ids"] else sorted(self.state.warehouses)
            items = [dict(self.state.warehouses[i]) for i in ids if i in self.state.warehouses]
        return self._found(items, "Warehouse")

    def get_availability(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            out = {}
            for pid in _ids(m["ids"], self.config.get_limit):
                level = self.state.availability(pid)
                if level is not None:
                    out[str(pid)] = level
        if not out:
            raise ApiError(404, "CMNC-404", "No Product Availability Found")
        return ok(out)

    def post_goods_out(self, req: Req, m: re.Match[str]) -> Reply:
        ids = self.state.create_goods_out(int(m["id"]), req.body)
        return ok(ids[0] if len(ids) == 1 else ids)

    def get_goods_out(self, req: Req, m: re.Match[str]) -> Reply:
        limit = self.config.goods_out_get_limit
        orders = None if m["orders"] == "*" else set(_ids(m["orders"], limit))
        notes = set(_ids(m["ids"], limit)) if m["ids"] else None
        with self.state.lock:
            out = {
                str(nid): {k: v for k, v in note.items() if k != "updatedOn"}
                for nid, note in sorted(self.state.goods_out.items())
                if (orders is None or note["orderId"] in orders) and (notes is None or nid in notes)
            }
        if not out:
            raise ApiError(404, "CMNC-404", "No Goods Out Note Found")
        return ok(out)

    def put_goods_out(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.update_goods_out(int(m["id"]), req.body)
        return ok({})

    def post_goods_out_event(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.goods_out_events(int(m["id"]), req.body, req.headers.get("if-match"))
        return ok({})

    def post_stock_correction(self, req: Req, m: re.Match[str]) -> Reply:
        wid = int(m["id"])
        corrections = (req.body or {}).get("corrections")
        if not isinstance(corrections, list) or not corrections:
            raise bad("corrections must be a non-empty list", "WHSC-001")
        for i, c in enumerate(corrections):
            if not isinstance(c.get("quantity"), int) or c["quantity"] == 0:
                raise bad(f"corrections[{i}].quantity must be a non-zero integer", "WHSC-002")
            if not c.get("reason"):
                raise bad(f"corrections[{i}].reason is required", "WHSC-003")
            if not isinstance(c.get("locationId"), int):
                raise bad(f"corrections[{i}].locationId is required", "WHSC-004")
        ids = []
        for c in corrections:
            self.state.adjust_stock(c.get("productId"), wid, c["quantity"])
            ids.append(self.state.next_id("correction", 1))
        return ok(ids)

    # --- accounting --------------------------------------------------------------------
    def post_payment(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_payment(req.body or {}))

    def post_journal(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_journal(req.body or {}))

    def get_journals(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            items = [
                dict(self.state.journals[i])
                for i in _ids(m["ids"], self.config.get_limit)
                if i in self.state.journals
            ]
        if not items:
            raise ApiError(404, "CMNC-404", "No Journal Found")
        return ok({"journals": items})

    def get_tax_codes(self, req: Req, m: re.Match[str]) -> Reply:
        ids = _ids(m["ids"]) if m["ids"] else sorted(self.state.tax_codes)
        return self._found(
            [dict(self.state.tax_codes[i]) for i in ids if i in self.state.tax_codes], "Tax Code"
        )

    # --- integration -------------------------------------------------------------------
    def get_webhooks(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = _ids(m["ids"]) if m["ids"] else sorted(self.state.webhooks)
            items = [dict(self.state.webhooks[i]) for i in ids if i in self.state.webhooks]
        return self._found(items, "Webhook")

    def post_webhook(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_webhook(req.body or {}))

    def delete_webhooks(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = [i for i in _ids(m["ids"]) if i in self.state.webhooks]
            if not ids:
                raise ApiError(404, "CMNC-404", "No Webhook Found")
            for i in ids:
                del self.state.webhooks[i]
        return Reply(200, None)

    def simulate_webhook(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            hook = self.state.webhooks.get(int(m["id"]))
            if hook is None:
                raise ApiError(404, "CMNC-404", "No Webhook Found")
            hook = dict(hook)
        data = (req.body or {}).get("testData") if isinstance(req.body, dict) else None
        if not isinstance(data, dict):
            raise bad("testData is required", "INTW-010")
        variables = {k.strip("${}"): str(v) for k, v in data.items()}
        ids = _ids(variables.get("resource-id", ""), self.config.webhook_simulate_limit)
        if "full-event" not in variables:
            variables["full-event"] = ".".join(
                filter(
                    None,
                    [
                        variables.get("resource-type"),
                        variables.get("lifecycle-event"),
                        variables.get("resource-specifier"),
                    ],
                )
            )
        return ok(self.dispatcher.simulate(hook, variables, ids))

    def get_account_configuration(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(
            {
                "accountCode": self.config.accounts[0],
                "baseCurrencyCode": "GBP",
                "taxScheme": "UK_VAT",
                "timeZone": "Europe/London",
                "defaultOrderStatusId": self.state.default_status["SO"],
                "brightpearlVersion": self.config.brightpearl_version,
            }
        )

    # --- OAuth -------------------------------------------------------------------------
    async def _authorize(self, request: Request) -> Response:
        """Authorization-code grant, step 1-3: the sandbox 'user' approves at once."""
        account = request.path_params["account"]
        q = request.query_params
        if account not in self.config.accounts:
            return JSONResponse({"error": "invalid_request", "error_description": "unknown account"}, 404)
        if (
            q.get("response_type") != "code"
            or q.get("client_id") != self.config.app_ref
            or not q.get("redirect_uri")
        ):
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "response_type=code, client_id and redirect_uri are required",
                },
                400,
            )
        code = self.issue_code(account, q["redirect_uri"])
        params = {"code": code}
        if q.get("state"):
            params["state"] = q["state"]
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return RedirectResponse(f"{q['redirect_uri']}{sep}{urlencode(params)}", status_code=302)

    def issue_code(self, account: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        with self.oauth.lock:
            self.oauth.codes[code] = {
                "account": account,
                "redirect_uri": redirect_uri,
                "expires": time.time() + 600,
            }
        return code

    def _tokens(self, account: str, host: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        ttl = self.config.access_token_ttl_seconds
        self.oauth.access[access] = {"account": account, "expires": time.time() + ttl}
        self.oauth.refresh[refresh] = {"account": account}
        self.oauth.grants += 1
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": int(ttl) if ttl >= 1 else ttl,
            "installation_instance_id": self.config.accounts.index(account) + 1,
            "api_domain": host,
        }

    async def _token(self, request: Request) -> Response:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "the token endpoint takes application/x-www-form-urlencoded",
                },
                400,
            )
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        account = request.path_params.get("account") or form.get("account_code") or self.config.accounts[0]

        def refuse(error: str, description: str, status: int = 400) -> Response:
            return JSONResponse({"error": error, "error_description": description}, status)

        if account not in self.config.accounts:
            return refuse("invalid_request", f"unknown account {account!r}")
        if form.get("client_id") != self.config.app_ref:
            return refuse("invalid_client", "client_id is not an app of this account", 401)
        if self.config.oauth_client_secret and form.get("client_secret") != self.config.oauth_client_secret:
            return refuse("invalid_client", "client_secret is wrong or missing", 401)
        host = request.headers.get("host", "127.0.0.1")
        grant = form.get("grant_type")
        with self.oauth.lock:
            if grant == "authorization_code":
                info = self.oauth.codes.pop(str(form.get("code")), None)
                if info is None or info["expires"] < time.time() or info["account"] != account:
                    return refuse("invalid_grant", "code is invalid, used or expired")
                if form.get("redirect_uri") != info["redirect_uri"]:
                    return refuse("invalid_grant", "redirect_uri does not match the authorization request")
                return JSONResponse(self._tokens(account, host))
            if grant == "refresh_token":
                token = str(form.get("refresh_token"))
                info = self.oauth.refresh.get(token)
                if info is None or info["account"] != account:
                    return refuse("invalid_grant", "refresh_token is invalid or was rotated")
                body = self._tokens(account, host)
                if self.config.rotate_refresh_tokens:
                    del self.oauth.refresh[token]
                else:
                    del self.oauth.refresh[body["refresh_token"]]
                    body["refresh_token"] = token
                return JSONResponse(body)
        return refuse("unsupported_grant_type", f"grant_type {grant!r} is not supported")

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
            self.requests.clear()
        with self.oauth.lock:
            self.oauth.codes.clear()
            self.oauth.access.clear()
            self.oauth.refresh.clear()
            self.oauth.grants = 0

    def add_fault(
        self,
        kind: str,
        count: int = 1,
        seconds: float = 0.0,
        path: str | None = None,
        method: str | None = None,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} must be one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("fault count must be at least 1")
        if kind in ("timeout", "slow") and seconds <= 0:
            raise ValueError(f"fault {kind} needs seconds > 0")
        fault = Fault(kind, count, seconds, path, method.upper() if method else None)
        with self._faults_lock:
            self.faults.append(fault)
        return fault

    def set_webhook_faults(self, **values: Any) -> WebhookFaults:
        faults = self.dispatcher.faults
        for key, value in values.items():
            if not hasattr(faults, key):
                raise ValueError(f"unknown webhook fault {key!r}")
            setattr(faults, key, type(getattr(faults, key))(value))
        return faults

    def expire_tokens(self) -> int:
        with self.oauth.lock:
            for info in self.oauth.access.values():
                info["expires"] = 0
            return len(self.oauth.access)

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


def _under(rest: str, prefix: str) -> bool:
    """Is the request path `rest` at or below `prefix`, segment by segment? ("contact-service/contact"
    covers ".../contact/12" but not ".../contact-search")."""
    path, wanted = rest.strip("/"), prefix.strip("/")
    return path == wanted or path.startswith(wanted + "/")
