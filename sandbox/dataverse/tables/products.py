"""The catalogue: products (lifecycle, families, unit group), unit groups and their base unit,
price lists and price list items (the currency rule), and the organisation's product flag.

Reference dataverse-api.md §10.7 (product), §10.8 (uomschedule, uom), §10.9 (pricelevel,
productpricelevel), §10.13 (transactioncurrency). The state machine itself (Draft / Active /
Retired / Under Revision pairs, publish = PATCH statecode=0,statuscode=1) is the generic one
in api/states.py, driven by the product's `states` in schema/tables.yaml.
"""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import ActionCall, EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import SimRequest, SimResponse, User
from sandbox.dataverse.schema import Table


def base_unit_id(schedule_id: str) -> str:
    """The id of the base unit a unit group creates for itself (deterministic, so seeds can bind it)."""
    return str(uuid.uuid5(uuid.UUID(schedule_id), "baseuom"))


def _ref_id(record: dict[str, Any], column: str) -> str | None:
    value = record.get(column)
    return value["id"] if isinstance(value, dict) else None


def _one_organization(message: str) -> ODataError:
    # Text UNCONFIRMED: an environment has exactly one organization row, which can only be updated.
    return ODataError(
        400, E.INVALID_ARGUMENT, f"The '{message}' method does not support entities of type 'organization'."
    )


class Products(EngineBase):
    # -- the organisation's flag ---------------------------------------------------------------
    def products_active_on_create(self) -> bool:
        """organization.createproductswithoutparentinactivestate (§10.7): new products without a
        parent family start Active when set. Read from the organization row; the simulator
        setting `products_active_on_create` only seeds that row at reset."""
        rows = self.db.rows.get("organization")
        if rows:
            return bool(next(iter(rows.values())).get("createproductswithoutparentinactivestate"))
        return self.config.products_active_on_create

    # -- hooks ---------------------------------------------------------------------------------
    def _parent_of(self, table: Table, record: dict[str, Any]) -> tuple[Table, dict[str, Any]] | None:
        if table.logical_name == "productpricelevel":
            price_list = self.follow(record, "pricelevelid", "pricelevel")
            if price_list is not None:  # a price list item inherits its list's currency
                return self.schema.tables["pricelevel"], price_list
        return super()._parent_of(table, record)

    def _table_computed(self, table: Table, record: dict[str, Any]) -> None:
        if table.logical_name == "uom":
            schedule = self.follow(record, "uomscheduleid", "uomschedule")
            is_base = schedule is not None and schedule.get("__baseuom") == record.get("uomid")
            record["isschedulebaseuom"] = is_base
            if not is_base and record.get("baseuom") is None and schedule is not None:
                base = schedule.get("__baseuom")
                if base:  # a unit is defined against its group's base unit unless told otherwise
                    record["baseuom"] = {"id": base, "table": "uom", "nav": "baseuom"}
            if record.get("quantity") is None:
                record["quantity"] = 1.0
        super()._table_computed(table, record)

    def _after_write(self, table: Table, record: dict[str, Any]) -> None:
        name = table.logical_name
        if name == "uomschedule":
            self._ensure_base_unit(record)
        elif name == "uom":
            self._check_unit_in_group(record)
        elif name == "product":
            self._check_product_unit(record)
        elif name == "productpricelevel":
            self._check_item_currency(record)
        elif name == "organization" and len(self.db.rows["organization"]) > 1:
            raise _one_organization("Create")
        super()._after_write(table, record)

    def _after_delete(self, table: Table, record: dict[str, Any]) -> None:
        if table.logical_name == "organization":
            raise _one_organization("Delete")
        super()._after_delete(table, record)

    def _table_transition(self, table: Table, new: dict[str, Any], state: int) -> None:
        if table.logical_name == "product" and state == 0 and isinstance(new.get("parentproductid"), dict):
            parent = self.db.rows["product"].get(new["parentproductid"]["id"])
            if parent is not None and parent.get("statecode") != 0:
                raise ODataError(
                    400,
                    E.INVALID_ARGUMENT,
                    "The product cannot be published because its parent product family is not active.",
                )
        super()._table_transition(table, new, state)

    # -- unit groups and units (§10.8) ---------------------------------------------------------
    def _ensure_base_unit(self, schedule: dict[str, Any]) -> None:
        """Creating a unit group creates its base unit, named by the create-only `baseuomname`."""
        stored = self.db.rows["uomschedule"][schedule["uomscheduleid"]]
        if stored.get("__baseuom") or not schedule.get("baseuomname"):
            return
        unit_id = base_unit_id(schedule["uomscheduleid"])
        stored["__baseuom"] = unit_id
        owner = _ref_id(schedule, "createdby") or _ref_id(schedule, "ownerid") or ""
        req = SimRequest("POST", "uoms", "", {}, b"", User(owner, ""), "")
        self.create(
            self.schema.tables["uom"],
            {
                "uomid": unit_id,
                "name": schedule["baseuomname"],
                "quantity": 1.0,
                "uomscheduleid@odata.bind": f"/uomschedules({schedule['uomscheduleid']})",
            },
            req,
        )

    def _check_unit_in_group(self, unit: dict[str, Any]) -> None:
        base = self.follow(unit, "baseuom", "uom")
        if base is not None and _ref_id(base, "uomscheduleid") != _ref_id(unit, "uomscheduleid"):
            # Message UNCONFIRMED: the reference names the rule (§10.8), not the platform's error.
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                "The base unit (baseuom) of a unit must belong to the same unit group (uomscheduleid).",
            )

    def _check_product_unit(self, product: dict[str, Any]) -> None:
        """defaultuomid must be a unit of defaultuomscheduleid (§10.7 marks the platform check
        UNCONFIRMED; switch it off with the simulator setting `check_product_unit_group`)."""
        if not self.config.check_product_unit_group:
            return
        unit = self.follow(product, "defaultuomid", "uom")
        schedule_id = _ref_id(product, "defaultuomscheduleid")
        if unit is None or schedule_id is None:
            return
        if _ref_id(unit, "uomscheduleid") != schedule_id:
            # Message UNCONFIRMED (no documented text for this check).
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                "The default unit (defaultuomid) of the product does not belong to its unit group "
                "(defaultuomscheduleid).",
            )

    # -- price lists (§10.9) -------------------------------------------------------------------
    def _check_item_currency(self, item: dict[str, Any]) -> None:
        """A price list item's currency must be its price list's: pricing error 34 "Invalid Price
        Level Currency" (§10.9). The HTTP error's code and text are UNCONFIRMED."""
        price_list = self.follow(item, "pricelevelid", "pricelevel")
        if price_list is None:
            return
        wanted, given = _ref_id(price_list, "transactioncurrencyid"), _ref_id(item, "transactioncurrencyid")
        if wanted is not None and given is not None and wanted != given:
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                "The currency (transactioncurrencyid) of the price list item does not match the currency "
                "of its price list (pricelevelid): pricing error 34, Invalid Price Level Currency.",
            )

    # -- actions -------------------------------------------------------------------------------
    def _table_action(self, call: ActionCall) -> SimResponse | None:
        table, key = call.table, call.key
        if (
            call.name == "PublishProductHierarchy"
            and table is not None
            and table.logical_name == "product"
            and key
        ):
            record = self.existing(table, key)
            with self.db.transaction():
                self._publish(table, record, call.req)
            return SimResponse.empty(204)
        return super()._table_action(call)

    def _publish(self, table: Table, record: dict[str, Any], req: SimRequest) -> None:
        if record.get("statecode") != 0:
            record = self.update(table, record, {"statecode": 0, "statuscode": 1}, req)
        for child in self.referencing("product", "parentproductid", record["productid"]):
            self._publish(table, child, req)
