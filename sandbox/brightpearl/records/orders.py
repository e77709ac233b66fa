"""Sales orders and credits: creation, derived statuses and totals, status changes, notes
and custom fields (order-service writes and order.* / sales-order.* events)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import pycountry

from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.records.amounts import fmt
from sandbox.brightpearl.records.core import existing
from sandbox.brightpearl.records.jsonpatch import patch_operations
from sandbox.brightpearl.records.order_rows import OrderRowStore


class OrderStore(OrderRowStore):
    orders: dict[int, dict[str, Any]]
    order_notes: dict[int, list[dict[str, Any]]]
    order_custom_fields: dict[int, dict[str, Any]]
    order_statuses: dict[int, dict[str, Any]]
    order_custom_field_meta: dict[str, dict[str, Any]]
    cancelled_status: int | None
    invoiced_status: int
    default_status: dict[str, int]
    # read from other stores
    contacts: dict[int, dict[str, Any]]
    addresses: dict[int, dict[str, Any]]
    prices: dict[int, dict[int, dict[str, str]]]
    warehouses: dict[int, dict[str, Any]]
    currencies: dict[int, dict[str, Any]]
    payments: dict[int, dict[str, Any]]
    drop_reservations: Any  # records/reservations.py: (order id) -> None

    def _reset_orders(self) -> None:
        self.orders = {}
        self.order_notes = {}
        self.order_custom_fields = {}
        # Each account names its own statuses (ids and names differ per account; the seed's
        # example names "Awaiting Payment" and "Partially Shipped"). Replace them with
        # PUT /_sandbox/order-statuses or add one with POST order-service/order-status.
        statuses = [
            (1, "Draft / Quote", "SO", "draft"),
            (2, "New web order", "SO", "open"),
            (3, "Awaiting Payment", "SO", "open"),
            (4, "Invoiced", "SO", "invoiced"),
            (5, "Cancelled", "SO", "cancelled"),
            (6, "Completed", "SO", "closed"),
            (7, "Pending PO", "PO", "open"),
            (8, "New sales credit", "SC", "open"),
            (9, "Credit complete", "SC", "closed"),
            (10, "Hidden legacy", "SO", "open"),
            (11, "Partially Shipped", "SO", "open"),
        ]
        self.order_statuses = {
            sid: self._status_record(
                {"statusId": sid, "name": name, "orderTypeCode": otc, "state": state, "visible": sid != 10}
            )
            for sid, name, otc, state in statuses
        }
        self.cancelled_status = 5
        self.invoiced_status = 4
        self.default_status = {"SO": 2, "SC": 8, "PO": 7}
        self.order_custom_field_meta = {
            "PCF_GIFTMSG": {
                "id": 1,
                "code": "PCF_GIFTMSG",
                "name": "Gift message",
                "customFieldType": "TEXT",
                "required": False,
            },
            "PCF_RUSH": {
                "id": 2,
                "code": "PCF_RUSH",
                "name": "Rush order",
                "customFieldType": "YES_NO",
                "required": False,
            },
            "PCF_SOURCE": {
                "id": 3,
                "code": "PCF_SOURCE",
                "name": "Source",
                "customFieldType": "SELECT",
                "required": False,
                "options": {"9": {"id": 9, "value": "Web"}, "10": {"id": 10, "value": "Phone"}},
            },
        }

    def _seed_orders(self, count: int) -> list[int]:
        rng = self.rng
        created: list[int] = []
        customer_ids = [c for c, v in self.contacts.items() if not v["relationshipToAccount"]["isSupplier"]]
        product_ids = list(self.products)
        for _ in range(count):
            if not customer_ids or not product_ids:
                break
            rows = []
            for pid in rng.sample(product_ids, k=min(len(product_ids), rng.randint(1, 3))):
                qty = rng.randint(1, 3)
                net = Decimal(self.prices.get(pid, {}).get(2, {}).get("1", "10.00")) * qty
                rows.append(
                    {
                        "productId": pid,
                        "quantity": str(qty),
                        "taxCode": "T20",
                        "net": fmt(net, 2),
                        "tax": fmt(net * Decimal("0.2"), 2),
                    }
                )
            created.append(
                self.create_sales_order(
                    {
                        "customer": {"id": rng.choice(customer_ids)},
                        "ref": f"WEB-{rng.randint(10000, 99999)}",
                        "currency": {"code": "GBP"},
                        "warehouseId": 2,
                        "channelId": 1,
                        "rows": rows,
                    },
                    "SO",
                    quiet=True,
                )
            )

        return created

    def create_sales_order(self, body: Any, order_type: str = "SO", quiet: bool = False) -> int:
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            customer = body.get("customer") or {}
            cid = customer.get("id", body.get("customerId")) if isinstance(customer, dict) else None
            if cid not in self.contacts:
                raise bad(f"customer.id {cid!r} is not an existing contact", "ORDC-010")
            ext, inst = body.get("externalRef"), body.get("installedIntegrationInstanceId")
            if inst is not None and (not isinstance(inst, int) or isinstance(inst, bool) or inst < 0):
                raise bad(f"installedIntegrationInstanceId {inst!r} must be a whole number", "ORDC-018")
            if ext is not None and not isinstance(ext, str):
                raise bad(f"externalRef {ext!r} must be text", "ORDC-019")
            if ext and (inst or self.config.duplicate_external_ref != "unique-with-instance"):
                for existing in self.orders.values():
                    if (
                        existing["orderTypeCode"] == order_type
                        and existing.get("externalRef") == ext
                        and existing.get("installedIntegrationInstanceId", 0) == (inst or 0)
                    ):
                        if self.config.duplicate_external_ref == "return-existing":
                            return existing["id"]
                        raise bad(
                            f"externalRef {ext!r} is already used by order {existing['id']}", "ORDC-011"
                        )
            status_id = body.get("statusId", self.default_status[order_type])
            status = self.order_statuses.get(status_id)
            if status is None or status["orderTypeCode"] != order_type:
                raise bad(f"statusId {status_id!r} is not a {order_type} order status", "ORDC-012")
            warehouse = body.get("warehouseId", 2)
            if warehouse not in self.warehouses:
                raise bad(f"warehouseId {warehouse!r} does not exist", "ORDC-013")
            parent = body.get("parentId", 0) or 0
            if order_type == "SC" and parent and parent not in self.orders:
                raise bad(f"parentId {parent!r} is not an existing order", "ORDC-014")
            currency_code = (body.get("currency") or {}).get("code", "GBP")
            if currency_code not in {c["code"] for c in self.currencies.values()}:
                raise bad(f"currency.code {currency_code!r} is not a currency of this account", "ORDC-015")
            placed = body.get("placedOn")
            if placed is not None:
                try:
                    placed_on = datetime.fromisoformat(str(placed).replace("Z", "+00:00"))
                except ValueError as exc:
                    raise bad(f"placedOn {placed!r} is not an ISO 8601 date-time", "ORDC-016") from exc
                if placed_on.tzinfo is None:
                    raise bad("placedOn needs a time zone offset", "ORDC-016")
            else:
                placed_on = None
            rows = self._parse_rows(body.get("rows"))
            overrides: dict[str, dict[str, Any]] = {}  # party -> address override (delivery, billing §6.2)
            countries: dict[str, Any] = {}
            for side in ("delivery", "billing"):
                override = (body.get(side) or {}).get("address")
                if not isinstance(override, dict):
                    continue
                overrides[side] = override
                if "countryIsoCode" in override:
                    code = str(override["countryIsoCode"]).upper()
                    found = pycountry.countries.get(alpha_3=code) or pycountry.countries.get(alpha_2=code)
                    if found is None:
                        raise bad(
                            f"{side}.address.countryIsoCode {override['countryIsoCode']!r} is unknown",
                            "ORDC-017",
                        )
                    countries[side] = found
            # every check is done: only now is anything allocated or written (atomic POST, §6.1)
            oid = self.next_id("order", 100000)
            now = self.now()
            contact = self.contacts[cid]
            address = self.addresses.get(contact["postAddressIds"].get("DEL", 0), {})
            party = {
                "contactId": cid,
                "addressFullName": " ".join(
                    filter(None, [contact.get("firstName"), contact.get("lastName")])
                ),
                "companyName": (contact.get("organisation") or {}).get("name", ""),
                "addressLine1": address.get("addressLine1", ""),
                "addressLine3": address.get("addressLine3", ""),
                "postalCode": address.get("postalCode", ""),
                "countryIsoCode": address.get("countryIsoCode2", "GB"),
                "countryIsoCode3": address.get("countryIsoCode", "GBR"),
                "countryId": address.get("countryId", 0),
                "email": ((contact["communication"]["emails"].get("PRI") or {}).get("email", "")),
                "telephone": contact["communication"]["telephones"].get("PRI", ""),
            }
            sides = {"delivery": dict(party), "billing": dict(party)}
            for side, override in overrides.items():
                sides[side].update({k: v for k, v in override.items() if isinstance(v, str)})
                if side in countries:
                    found = countries[side]
                    sides[side].update(countryIsoCode=found.alpha_2, countryIsoCode3=found.alpha_3)
            order_rows: dict[str, Any] = {}
            for seq, row in enumerate(rows, start=1):
                rid = self.next_id("row", 1)
                order_rows[str(rid)] = self._order_row(row, seq, currency_code, item_cost=True)
            record = {
                "id": oid,
                "parentOrderId": parent,
                "orderTypeCode": order_type,
                "reference": body.get("ref", ""),
                "externalRef": ext or "",
                "installedIntegrationInstanceId": inst or 0,
                "orderStatus": {"orderStatusId": status_id, "name": status["name"]},
                "placedOn": placed_on or now,
                "createdOn": now,
                "updatedOn": now,
                "createdById": 4,
                "priceListId": body.get("priceListId", contact["financialDetails"]["priceListId"]),
                "priceModeCode": body.get("priceModeCode", "EXC"),
                "currency": {
                    "orderCurrencyCode": currency_code,
                    "exchangeRate": "1.000000",
                    "fixedExchangeRate": True,
                },
                "assignment": {
                    "current": {
                        "channelId": body.get("channelId", 1),
                        "leadSourceId": 0,
                        "staffOwnerContactId": body.get("staffOwnerId", 0),
                        "projectId": 0,
                        "teamId": 0,
                    }
                },
                "parties": {"customer": party, **sides},
                "delivery": {
                    "deliveryDate": now,
                    "shippingMethodId": (body.get("delivery") or {}).get("shippingMethodId", 0),
                },
                "invoices": [],
                "orderRows": order_rows,
                "warehouseId": warehouse,
                "historicalOrder": False,
                "isDropship": False,
            }
            self.orders[oid] = record
            self.order_notes[oid] = []
            self._derive_order(record)
            if not quiet:
                self.emit("sales-order.created" if order_type == "SO" else "sales-credit.created", [oid])
                self.emit("order.created", [oid])
                self.emit("order.modified", [oid])
            return oid

    def _derive_order(self, order: dict[str, Any]) -> None:
        net = sum(
            (Decimal(r["rowValue"]["rowNet"]["value"]) for r in order["orderRows"].values()), Decimal(0)
        )
        tax = sum(
            (Decimal(r["rowValue"]["rowTax"]["value"]) for r in order["orderRows"].values()), Decimal(0)
        )
        order["totalValue"] = {
            "net": fmt(net, 2),
            "taxAmount": fmt(tax, 2),
            "baseNet": fmt(net, 2),
            "baseTaxAmount": fmt(tax, 2),
            "baseTotal": fmt(net + tax, 2),
            "total": fmt(net + tax, 2),
        }
        tracked = {
            rid: Decimal(r["quantity"]["magnitude"])
            for rid, r in order["orderRows"].items()
            if r["_stockTracked"]
        }
        noted: dict[str, Decimal] = {}
        shipped: dict[str, Decimal] = {}
        for note in self.goods_out.values():
            if note["orderId"] != order["id"]:
                continue
            for rid, lines in note["orderRows"].items():
                qty = sum((Decimal(line["quantity"]) for line in lines), Decimal(0))
                noted[rid] = noted.get(rid, Decimal(0)) + qty
                if note["status"]["shipped"]:
                    shipped[rid] = shipped.get(rid, Decimal(0)) + qty
        prefix = order["orderTypeCode"]
        if not tracked:
            order["stockStatusCode"], order["allocationStatusCode"], order["shippingStatusCode"] = (
                "NON",
                "ANR",
                "NST",
            )
        else:

            def level(done: dict[str, Decimal]) -> str:
                if all(done.get(r, 0) >= q for r, q in tracked.items()):
                    return "A"
                return "P" if any(done.get(r, 0) > 0 for r in tracked) else "N"

            noted_level, shipped_level = level(noted), level(shipped)
            order["stockStatusCode"] = f"{prefix}{noted_level}"
            order["allocationStatusCode"] = {"A": "AAA", "P": "APA", "N": "ANA"}[noted_level]
            order["shippingStatusCode"] = {"A": "ASS", "P": "SPS", "N": "SNS"}[shipped_level]
        # money in less money out (a refund, PAYMENT, on an order; on a credit the PAYMENT is what
        # settles it): reference §9
        paid = self._payments_total(order["id"])
        if order["orderTypeCode"] in ("SC", "PC"):
            paid = -paid
        total = net + tax
        order["orderPaymentStatus"] = (
            "NOT_APPLICABLE"
            if total == 0
            else "PAID"
            if paid >= total
            else "PARTIALLY_PAID"
            if paid > 0
            else "UNPAID"
        )

    def order(self, oid: int) -> dict[str, Any]:
        return existing(self.orders, oid, f"Order {oid} not found")

    def _touch_order(self, order: dict[str, Any], *events: str) -> None:
        """Move updatedOn, derive the statuses again and raise `events` (default
        `order.modified`), plus `order.modified.fully-shipped` when the change is what makes
        every stock-tracked row shipped: a shipped note, or a row cut to what shipped (§6.5)."""
        before = order.get("shippingStatusCode")
        order["updatedOn"] = self.now()
        self._derive_order(order)
        for event in events or ("order.modified",):
            self.emit(event, [order["id"]])
        if before is not None and before != "ASS" and order["shippingStatusCode"] == "ASS":
            self.emit("order.modified.fully-shipped", [order["id"]])

    def set_order_status(self, oid: int, body: Any) -> None:
        with self.lock:
            order = self.order(oid)
            sid = body.get("orderStatusId") if isinstance(body, dict) else None
            status = self.order_statuses.get(sid)
            if status is None:
                raise bad(f"orderStatusId {sid!r} does not exist", "ORDC-040")
            if status["orderTypeCode"] != order["orderTypeCode"]:
                raise bad(
                    f"status {sid} belongs to {status['orderTypeCode']} orders, not {order['orderTypeCode']}",
                    "ORDC-041",
                )
            if not status["visible"]:
                raise bad(f"status {sid} is hidden", "ORDC-042")
            if sid == self.cancelled_status:
                if any(n["orderId"] == oid for n in self.goods_out.values()):
                    raise bad("an order with goods-out notes cannot be cancelled", "ORDC-043")
                if order["orderStatus"]["orderStatusId"] == self.invoiced_status or order["invoices"]:
                    raise bad("an invoiced order cannot be cancelled", "ORDC-044")
                if self._payments_total(oid) != 0:
                    raise bad("an order with payments cannot be cancelled", "ORDC-045")
            note = body.get("orderNote") or {}
            order["orderStatus"] = {"orderStatusId": sid, "name": status["name"]}
            if sid == self.cancelled_status:
                self.drop_reservations(oid)  # records/reservations.py: a cancelled order holds nothing
            if sid == self.invoiced_status and not order["invoices"]:
                order["invoices"] = [
                    {"invoiceReference": f"SI-{oid}", "taxDate": self.now(), "dueDate": self.now()}
                ]
            self._add_note(
                oid,
                {
                    "text": note.get("text") or f"Order status changed to {status['name']}",
                    "isPublic": bool(note.get("isPublic", False)),
                },
            )
            self._touch_order(order, "order.modified.order-status", "order.modified")

    def _payments_total(self, oid: int) -> Decimal:
        """What the order's customer payments add up to (reference §6.6: a cancellation needs
        zero): money in (RECEIPT, CAPTURE) less money out (PAYMENT, a refund; §9)."""
        sign = {"RECEIPT": 1, "CAPTURE": 1, "PAYMENT": -1}
        return sum(
            (
                sign[p["paymentType"]] * Decimal(p["amountPaid"])
                for p in self.payments.values()
                if p["orderId"] == oid and p["paymentType"] in sign
            ),
            Decimal(0),
        )

    def _add_note(self, oid: int, body: dict[str, Any]) -> int:
        nid = self.next_id("note")
        self.order_notes.setdefault(oid, []).append(
            {
                "id": nid,
                "orderId": oid,
                "text": body["text"],
                "isPublic": bool(body.get("isPublic", False)),
                "fileId": body.get("fileId", 0),
                "addedOn": self.now(),
                "addedBy": 4,
            }
        )
        return nid

    def add_note(self, oid: int, body: Any) -> int:
        with self.lock:
            order = self.order(oid)
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("text"), str)
                or not body["text"].strip()
            ):
                raise bad("text is required", "ORDC-050")
            nid = self._add_note(oid, body)
            self._touch_order(order)
            return nid

    # --- order statuses (reference §6.6) -------------------------------------------------
    def _status_record(self, body: dict[str, Any]) -> dict[str, Any]:
        """A validated status in the GET shape; `statusId` and `orderTypeCode` come in `body`."""
        name, code = body.get("name"), body.get("orderTypeCode")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise bad(f"name {name!r} must be text of 1 to 64 characters", "ORDC-080")
        if code not in ("SO", "SC", "PO", "PC"):
            raise bad(f"orderTypeCode {code!r} must be SO, SC, PO or PC", "ORDC-081")
        color = body.get("color", "#3366FF")
        if not isinstance(color, str) or not re.fullmatch(r"#[0-9A-Fa-f]{6}", color):
            raise bad(f"color {color!r} must be a hex colour such as #3366FF", "ORDC-082")
        remind = body.get("remindAfterDays", 0)
        if not isinstance(remind, int) or not 0 <= remind <= 9999:
            raise bad(f"remindAfterDays {remind!r} must be a whole number from 0 to 9999", "ORDC-083")
        emails = body.get("alertEmails", [])
        if (
            not isinstance(emails, list)
            or len(emails) > 2
            or any(not isinstance(e, str) or len(e) > 63 for e in emails)
        ):
            raise bad("alertEmails must be at most 2 addresses of at most 63 characters", "ORDC-084")
        sid = body["statusId"]
        return {
            "statusId": sid,
            "name": name,
            "orderTypeCode": code,
            "sortOrder": body.get("sortOrder", sid * 10),
            "disabled": bool(body.get("disabled", False)),
            "visible": bool(body.get("visible", True)),
            "color": color,
            "remindAfterDays": remind,
            "alertEmails": list(emails),
            "emailContent": str(body.get("emailContent", "")),
            "batchProcess": bool(body.get("batchProcess", False)),
            "state": str(body.get("state", "open")),
        }

    def create_order_status(self, body: Any) -> int:
        """POST order-service/order-status: a new status; the name is unique per order type."""
        with self.lock:
            if not isinstance(body, dict) or not body:
                raise bad("A JSON body is required", "CMNC-010")
            sid = max(self.order_statuses, default=0) + 1
            record = self._status_record(dict(body, statusId=sid))
            for other in self.order_statuses.values():
                if other["orderTypeCode"] == record["orderTypeCode"] and other["name"] == record["name"]:
                    raise bad(
                        f"name {record['name']!r} is already status {other['statusId']} of "
                        f"{record['orderTypeCode']} orders",
                        "ORDC-085",
                    )
            self.order_statuses[sid] = record
            return sid

    def configure_order_statuses(self, body: Any) -> dict[str, Any]:
        """Replace the account's statuses (admin): `statuses` [{statusId, name, orderTypeCode,
        state?, visible?, ...}], `cancelledStatusId` (null: none), `invoicedStatusId` and `defaultStatusIds`
        {SO, SC, PO}. Orders keep their status id; a status they use must stay."""
        with self.lock:
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("statuses"), list)
                or not body["statuses"]
            ):
                raise bad("statuses must be a non-empty list", "CMNC-010")
            table: dict[int, dict[str, Any]] = {}
            for index, item in enumerate(body["statuses"]):
                sid = item.get("statusId") if isinstance(item, dict) else None
                if not isinstance(sid, int) or isinstance(sid, bool) or sid < 1:
                    raise bad(f"statuses[{index}].statusId {sid!r} must be a positive whole number")
                if sid in table:
                    raise bad(f"statuses[{index}].statusId {sid} is used twice")
                try:
                    table[sid] = self._status_record(item)
                except ApiError as exc:
                    raise bad(f"statuses[{index}]: {exc.message}", exc.code) from exc
            names = [(s["orderTypeCode"], s["name"]) for s in table.values()]
            if len(set(names)) != len(names):
                raise bad("status names must be unique per order type")

            def pick(key: str, value: Any, code: str) -> int:
                if value not in table or table[value]["orderTypeCode"] != code:
                    raise bad(f"{key} {value!r} is not a {code} status of the list")
                return int(value)

            cancelled = (  # an account may have no cancelled status (sales order GET isCanceled null)
                None
                if body.get("cancelledStatusId") is None
                else pick("cancelledStatusId", body["cancelledStatusId"], "SO")
            )
            invoiced = pick("invoicedStatusId", body.get("invoicedStatusId"), "SO")
            defaults = body.get("defaultStatusIds") or {}
            chosen = {
                code: pick(f"defaultStatusIds.{code}", defaults.get(code), code)
                for code in ("SO", "SC", "PO")
            }
            used = {o["orderStatus"]["orderStatusId"] for o in self.orders.values()} - set(table)
            if used:
                raise bad(f"status ids {sorted(used)} are used by orders and must stay in the list")
            self.order_statuses = table
            self.cancelled_status, self.invoiced_status, self.default_status = cancelled, invoiced, chosen
            for order in self.orders.values():
                order["orderStatus"]["name"] = table[order["orderStatus"]["orderStatusId"]]["name"]
            return self.order_status_settings()

    def order_status_settings(self) -> dict[str, Any]:
        return {
            "statuses": [dict(s) for s in self.order_statuses.values()],
            "cancelledStatusId": self.cancelled_status,
            "invoicedStatusId": self.invoiced_status,
            "defaultStatusIds": dict(self.default_status),
        }

    # --- invoicing (a Brightpearl user or an accounting run; admin-driven) ----------------
    def invoice_order(self, oid: int, body: Any) -> dict[str, Any]:
        """Invoice a sales order: `invoiceReference` (default SI-{id}), `taxDate` (default now)
        and, when `statusId` is given, a status change with its note and events. An order is
        invoiced once; afterwards rows are locked and it cannot be cancelled (§6.5, §6.6)."""
        with self.lock:
            order = self.order(oid)
            body = body if isinstance(body, dict) else {}
            if order["invoices"]:
                raise bad(
                    f"order {oid} is already invoiced ({order['invoices'][0]['invoiceReference']})",
                    "ORDC-090",
                )
            reference = body.get("invoiceReference") or f"SI-{oid}"
            if not isinstance(reference, str) or len(reference) > 64:
                raise bad("invoiceReference must be text of at most 64 characters", "ORDC-091")
            if body.get("statusId") is not None:
                if body["statusId"] == self.cancelled_status:
                    raise bad("an order cannot be invoiced into the cancelled status", "ORDC-092")
                self.set_order_status(oid, {"orderStatusId": body["statusId"]})  # checks first
            now = self.now()
            order["invoices"] = [
                {"invoiceReference": reference, "taxDate": body.get("taxDate") or now, "dueDate": now}
            ]
            self._touch_order(order)
            return {
                "invoices": [dict(i) for i in order["invoices"]],
                "orderStatus": dict(order["orderStatus"]),
            }

    def render_custom_fields(self, oid: int) -> dict[str, Any]:
        out = {}
        for code, value in self.order_custom_fields.get(oid, {}).items():
            meta = self.order_custom_field_meta[code]
            if meta["customFieldType"] == "SELECT":
                out[code] = dict(meta["options"][str(value)])
            else:
                out[code] = value
        return out

    def patch_order_custom_fields(self, oid: int, ops: Any) -> dict[str, Any]:
        with self.lock:
            order = self.order(oid)
            ops = patch_operations(ops)
            fields = dict(self.order_custom_fields.get(oid, {}))
            for op in ops:
                parts = str(op.get("path", "")).strip("/").split("/")
                code = parts[0]
                meta = self.order_custom_field_meta.get(code)
                if meta is None:
                    raise bad(f"custom field {code!r} does not exist", "ORDC-060")
                if op.get("op") == "remove":
                    fields.pop(code, None)
                    continue
                if op.get("op") not in ("add", "replace"):
                    raise bad(f"operation {op.get('op')!r} is not supported on custom fields", "ORDC-061")
                value = op.get("value")
                kind = meta["customFieldType"]
                if kind == "SELECT":
                    option = (
                        value
                        if len(parts) > 1 and parts[1] == "id"
                        else (value.get("id") if isinstance(value, dict) else None)
                    )
                    if str(option) not in meta["options"]:
                        raise bad(f"{code}: option {option!r} does not exist", "ORDC-062")
                    fields[code] = int(option)  # type: ignore[arg-type]
                elif kind == "YES_NO":
                    if not isinstance(value, bool):
                        raise bad(f"{code} must be true or false", "ORDC-063")
                    fields[code] = value
                else:
                    if not isinstance(value, str):
                        raise bad(f"{code} must be text", "ORDC-064")
                    fields[code] = value
            self.order_custom_fields[oid] = fields
            self._touch_order(order)
            return self.render_custom_fields(oid)
