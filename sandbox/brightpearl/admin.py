"""The simulator's admin surface (`/_sandbox/...`): reset, seed, raw state, user-side
changes (which bump updatedOn and raise webhooks), request counters, throttle records,
fault injection, token expiry, OAuth codes, webhook delivery faults and log, live config.

No authentication: the simulator binds to loopback only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.brightpearl.catalogue_admin import handle_catalogue_admin
from sandbox.brightpearl.credits_admin import handle_credits_admin
from sandbox.brightpearl.errors import ApiError
from sandbox.brightpearl.orders_admin import handle_orders_admin

if TYPE_CHECKING:
    from sandbox.brightpearl.app import Simulator

STATE_KINDS = {
    "contacts": "contacts",
    "addresses": "addresses",
    "orders": "orders",
    "products": "products",
    "goods-out": "goods_out",
    "payments": "payments",
    "journals": "journals",
    "webhooks": "webhooks",
    "tags": "tags",
    "groups": "groups",
    "prices": "prices",
    "stock": "stock",
    "stock-corrections": "stock_corrections",
    "goods-movements": "goods_movements",
}


def handle_admin(
    sim: Simulator, method: str, path: str, query: dict[str, str], body: dict[str, Any]
) -> tuple[int, Any]:
    parts = path.split("/") if path else []
    state = sim.state
    route = (method, parts[0] if parts else "")

    if route == ("GET", "health"):
        return 200, {"ok": True, "accounts": sim.config.accounts}
    if route == ("GET", "config"):
        return 200, sim.config.model_dump()
    if route == ("PATCH", "config"):
        return 200, sim.configure(**body).model_dump()
    if route == ("POST", "reset"):
        if "config" in body:
            sim.configure(**body["config"])
        sim.reset(body.get("seed"))
        return 200, {
            "contacts": len(state.contacts),
            "products": len(state.products),
            "orders": len(state.orders),
        }
    if route == ("POST", "seed"):
        created = state.seed(
            int(body.get("contacts", 0)), int(body.get("products", 0)), int(body.get("orders", 0))
        )
        return 200, {
            k: {"count": len(v), "first": v[0] if v else None, "last": v[-1] if v else None}
            for k, v in created.items()
        }
    if route == ("GET", "state"):
        if len(parts) < 2 or parts[1] not in STATE_KINDS:
            raise ValueError(f"state kind must be one of {sorted(STATE_KINDS)}")
        with state.lock:
            table = getattr(state, STATE_KINDS[parts[1]])
            wanted = {int(i) for i in query["ids"].split(",")} if query.get("ids") else None
            return 200, {str(k): _plain(v) for k, v in table.items() if wanted is None or k in wanted}
    if route == ("POST", "contacts") and len(parts) == 3 and parts[2] == "change":
        return 200, _change_contact(sim, int(parts[1]), body)
    if route == ("POST", "orders") and len(parts) == 3 and parts[2] == "status":
        state.set_order_status(int(parts[1]), body)
        return 200, {"updatedOn": state.orders[int(parts[1])]["updatedOn"]}
    if parts[:1] in (["orders"], ["goods-out"], ["order-statuses"]):
        answer = handle_orders_admin(sim, method, parts, body)
        if answer is not None:
            return answer
    if parts[:1] == ["sales-credits"]:
        answer = handle_credits_admin(sim, method, parts, body)
        if answer is not None:
            return answer
    if route == ("POST", "products") and len(parts) == 3 and parts[2] == "stock":
        state.adjust_stock(int(parts[1]), int(body["warehouseId"]), int(body["delta"]))
        with state.lock:
            return 200, state.availability(int(parts[1])) or {}
    if route == ("POST", "products") and len(parts) == 3 and parts[2] == "change":
        allowed = {"name", "sku", "ean"}
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}; changeable: {sorted(allowed)}")
        pid = int(parts[1])
        change: dict[str, Any] = {}
        with state.lock:
            if pid not in state.products:
                raise ApiError(404, "CMNC-404", f"Product {pid} not found")
            if "name" in body:
                channels = [dict(c) for c in state.products[pid]["salesChannels"]]
                channels[0]["productName"] = body["name"]
                change["salesChannels"] = channels
            identity = {k: body[k] for k in ("sku", "ean") if k in body}
            if identity:
                change["identity"] = identity
            state.update_product(pid, change, None)
            return 200, {
                "productId": pid,
                "updatedOn": state.products[pid]["updatedOn"],
                "version": state.products[pid]["version"],
            }
    if route == ("GET", "requests"):
        with sim._faults_lock:
            counts = dict(sim.requests)
        return 200, {"total": sum(counts.values()), "byEndpoint": counts}
    if route == ("GET", "throttle"):
        snap = sim.throttle.snapshot()
        if query.get("log") == "true":
            with sim.throttle._lock:
                snap["log"] = {k: list(v) for k, v in sim.throttle.admitted_log.items()}
        return 200, snap
    if parts[:1] == ["faults"]:
        if method == "POST":
            fault = sim.add_fault(
                str(body.get("kind")),
                int(body.get("count", 1)),
                float(body.get("seconds", 0)),
                body.get("path"),
                body.get("method"),
            )
            return 200, vars(fault)
        if method == "DELETE":
            with sim._faults_lock:
                sim.faults.clear()
            return 200, []
        if method == "GET":
            with sim._faults_lock:
                return 200, [vars(f) for f in sim.faults if f.remaining > 0]
    if route == ("POST", "tokens") and parts[1:] == ["expire"]:
        return 200, {"expired": sim.expire_tokens()}
    if route == ("POST", "oauth") and parts[1:] == ["code"]:
        account = body.get("account", sim.config.accounts[0])
        if account not in sim.config.accounts:
            raise ValueError(f"unknown account {account!r}")
        return 200, {"code": sim.issue_code(account, str(body["redirectUri"]))}
    if parts[:1] == ["webhooks"]:
        if method == "POST" and parts[1:] == ["faults"]:
            mapping = {
                "drop": "drop",
                "duplicate": "duplicate",
                "delaySeconds": "delay_seconds",
                "reorder": "reorder",
            }
            unknown = set(body) - set(mapping)
            if unknown:
                raise ValueError(f"unknown webhook fault(s) {sorted(unknown)}; use {sorted(mapping)}")
            return 200, vars(sim.set_webhook_faults(**{mapping[k]: v for k, v in body.items()}))
        if method == "GET" and parts[1:] == ["deliveries"]:
            return 200, sim.dispatcher.log.snapshot()
        if method == "GET" and parts[1:] == ["idle"]:
            return 200, {"idle": sim.dispatcher.idle()}
    if route == ("GET", "exchange-rates"):
        return 200, state.list_exchange_rates()
    if route == ("PUT", "exchange-rates"):  # the whole table, past dates too (tests)
        return 200, state.replace_exchange_rates(list(body.get("rates") or []))
    if parts[:1] == ["catalogue"]:
        return handle_catalogue_admin(sim, method, parts[1:], body)
    raise ApiError(404, "not-found", f"no admin endpoint {method} /_sandbox/{path}")


def _change_contact(sim: Simulator, contact_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Edit a contact as a Brightpearl user would (UI): any of firstName, lastName, email,
    telephone, priceListId, isSupplier; bumps updatedOn and raises contact.modified."""
    allowed = {"firstName", "lastName", "email", "telephone", "priceListId", "isSupplier", "salutation"}
    unknown = set(body) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}; changeable: {sorted(allowed)}")
    state = sim.state
    with state.lock:
        record = state.contact(contact_id)
        for key in ("firstName", "lastName", "salutation"):
            if key in body:
                record[key] = body[key]
        if "email" in body:
            record["communication"]["emails"]["PRI"] = {"email": body["email"]}
        if "telephone" in body:
            record["communication"]["telephones"]["PRI"] = body["telephone"]
        if "priceListId" in body:
            if body["priceListId"] not in state.price_lists:
                raise ValueError(f"price list {body['priceListId']} does not exist")
            record["financialDetails"]["priceListId"] = body["priceListId"]
        if "isSupplier" in body:
            record["relationshipToAccount"]["isSupplier"] = bool(body["isSupplier"])
        state._touch_contact(contact_id)
        return {"contactId": contact_id, "updatedOn": record["updatedOn"]}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(value)
    return value
