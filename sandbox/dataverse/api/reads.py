"""Reading one record: $select, $expand, annotations (formatted values) and GET by key."""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import query as Q
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import (
    API_PREFIX,
    LOOKUP_VALUE_RE,
    SimRequest,
    SimResponse,
    etag,
)
from sandbox.dataverse.schema import Table


class Reads(EngineBase):
    def _select(self, table: Table, text: str | None) -> list[str] | None:
        if not text:
            return None
        result = []
        for name in (n.strip() for n in text.split(",")):
            m = LOOKUP_VALUE_RE.fullmatch(name)
            col = table.columns.get(m.group(1) if m else name)
            if col is None or col.write_only or (m and not col.is_lookup):
                raise self._unknown_property(table, name)
            result.append(col.name)
        return result

    def _unknown_property(self, table: Table, name: str) -> ODataError:
        return ODataError(
            400, "0x0", f"Could not find a property named '{name}' on type '{table.odata_type}'."
        )

    def annotations_wanted(self, req: SimRequest) -> list[str]:
        raw = req.prefer.get("odata.include-annotations")
        if raw is None:
            return []
        return [p.strip() for p in raw.split(",") if p.strip()]

    def render(
        self,
        table: Table,
        record: dict[str, Any],
        select: list[str] | None,
        req: SimRequest,
        *,
        entity: bool = False,
        expand: list[Q.ExpandItem] | None = None,
    ) -> dict[str, Any]:
        wanted = self.annotations_wanted(req)

        def want(annotation: str) -> bool:
            return any(
                w == "*" or w == annotation or (w.endswith("*") and annotation.startswith(w[:-1]))
                for w in wanted
            )

        out: dict[str, Any] = {}
        if entity:
            cols = (req.params.get("$select") or "").replace(" ", "") if select else ""
            out["@odata.context"] = (
                f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}({cols})/$entity"
                if cols
                else f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}/$entity"
            )
        out["@odata.etag"] = etag(record)
        names = select if select is not None else [c for c in table.columns]
        fmt = "OData.Community.Display.V1.FormattedValue"
        for name in names:
            column = table.columns[name]
            if column.write_only:
                continue
            value = record.get(name)
            if column.is_lookup:
                prop = f"_{name}_value"
                out[prop] = value["id"] if isinstance(value, dict) else None
                if isinstance(value, dict):
                    target = self.schema.tables[value["table"]]
                    target_rec = self.db.rows[target.logical_name].get(value["id"])
                    if want(fmt):
                        out[f"{prop}@{fmt}"] = (target_rec or {}).get(target.primary_name)
                    if want("Microsoft.Dynamics.CRM.associatednavigationproperty"):
                        out[f"{prop}@Microsoft.Dynamics.CRM.associatednavigationproperty"] = value.get(
                            "nav", name
                        )
                    if want("Microsoft.Dynamics.CRM.lookuplogicalname"):
                        out[f"{prop}@Microsoft.Dynamics.CRM.lookuplogicalname"] = value["table"]
                continue
            out[name] = value
            if value is not None and want(fmt):
                if column.type in ("picklist", "state", "status") and value in column.options:
                    out[f"{name}@{fmt}"] = column.options[value]
                elif column.type == "money":
                    out[f"{name}@{fmt}"] = f"{self._currency_symbol(record)}{float(value):,.2f}"
                elif column.type == "bool":
                    out[f"{name}@{fmt}"] = "Yes" if value else "No"
        out[table.primary_id] = record[table.primary_id]
        for item in expand or []:
            out[item.nav] = self._expand(table, record, item, req)
        return out

    def _currency_symbol(self, record: dict[str, Any]) -> str:
        cur = self.currency_of(record)
        return str(cur.get("currencysymbol") or "") if cur else ""

    def children(self, table: Table, record: dict[str, Any], nav: str) -> tuple[Table, list[dict[str, Any]]]:
        """The child table of one-to-many navigation `nav` and the record's rows in it."""
        spec = table.one_to_many[nav]
        child_table = self.schema.tables[spec["table"]]
        rows = self.referencing(child_table.logical_name, spec["column"], record[table.primary_id])
        return child_table, rows

    def _expand(self, table: Table, record: dict[str, Any], item: Q.ExpandItem, req: SimRequest) -> Any:
        navs = table.navigation()
        if item.nav in navs:
            column, target_name = navs[item.nav]
            target_rec = self.follow(record, column.name, target_name)
            if target_rec is None:
                return None
            target = self.schema.tables[target_name]
            select = self._select(target, item.options.get("$select"))
            nested = Q.parse_expand(item.options["$expand"]) if "$expand" in item.options else None
            return self.render(target, target_rec, select, req, expand=nested)
        if item.nav in table.one_to_many:
            child_table, rows = self.children(table, record, item.nav)
            if "$filter" in item.options:
                node = Q.parse_filter(item.options["$filter"])
                self._check_paths(child_table, node)
                rows = [r for r in rows if Q.evaluate(node, r, self._resolver(child_table))]
            select = self._select(child_table, item.options.get("$select"))
            return [self.render(child_table, r, select, req) for r in sorted(rows, key=lambda r: r["__seq"])]
        raise self._unknown_property(table, item.nav)

    def _retrieve(self, req: SimRequest, table: Table, key: dict[str, Any]) -> SimResponse:
        record = self.existing(table, key)
        params = req.params
        select = self._select(table, params.get("$select"))
        expand = Q.parse_expand(params["$expand"]) if params.get("$expand") else None
        inm = req.header("if-none-match")
        if inm and inm != "null" and inm == etag(record) and not expand and not self.annotations_wanted(req):
            return SimResponse.empty(304, {"ETag": etag(record)})
        body = self.render(table, record, select, req, entity=True, expand=expand)
        headers = {"ETag": etag(record)}
        if self.annotations_wanted(req):
            headers["Preference-Applied"] = (
                f'odata.include-annotations="{req.prefer["odata.include-annotations"]}"'
            )
        return SimResponse.json(200, body, headers)
