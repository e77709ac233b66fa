"""Collection queries: $filter paths, $orderby, $top, $count, server-driven paging with $skiptoken."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from sandbox.dataverse import query as Q
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import (
    API_PREFIX,
    LOOKUP_VALUE_RE,
    SimRequest,
    SimResponse,
)
from sandbox.dataverse.schema import Column, Table


class Queries(EngineBase):
    def _resolver(self, table: Table) -> Q.Resolver:
        # One resolver serves one request, during which the schema does not change: the
        # navigation maps and split paths are worked out once, not once per row (a filter on
        # a 10,000-row table evaluates the same paths 10,000 times).
        nav_cache: dict[str, dict[str, tuple[Column, str]]] = {}
        path_cache: dict[str, list[tuple[str, str | None]]] = {}

        def navigation(t: Table) -> dict[str, tuple[Column, str]]:
            navs = nav_cache.get(t.logical_name)
            if navs is None:
                navs = nav_cache[t.logical_name] = t.navigation()
            return navs

        def split(path: str) -> list[tuple[str, str | None]]:
            parts = path_cache.get(path)
            if parts is None:
                parts = []
                for part in path.split("/"):
                    m = LOOKUP_VALUE_RE.fullmatch(part)
                    parts.append((part, m.group(1) if m else None))
                path_cache[path] = parts
            return parts

        def resolve(row: dict[str, Any], path: str) -> Any:
            current_table, current = table, row
            parts = split(path)
            for i, (part, lookup) in enumerate(parts):
                last = i == len(parts) - 1
                if lookup is not None:
                    value = current.get(lookup)
                    return value["id"] if isinstance(value, dict) else None
                if last:
                    value = current.get(part)
                    return value.get("id") if isinstance(value, dict) else value
                navs = navigation(current_table)
                if part in navs:
                    column, target = navs[part]
                    nxt = self.follow(current, column.name, target)
                    if nxt is None:
                        return None
                    current_table, current = self.schema.tables[target], nxt
                    continue
                value = current.get(part)
                if isinstance(value, dict):
                    return value.get("id")
                return value
            return None

        return resolve

    def _check_paths(self, table: Table, node: Any) -> None:
        for path in Q.paths_in(node):
            current = table
            parts = path.split("/")
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                m = LOOKUP_VALUE_RE.fullmatch(part)
                if m:
                    col = current.columns.get(m.group(1))
                    if col is None or not col.is_lookup or not last:
                        raise self._unknown_property(current, part)
                    break
                navs = current.navigation()
                if not last and part in navs:
                    current = self.schema.tables[navs[part][1]]
                    continue
                col = current.columns.get(part)
                if col is None or col.write_only:
                    raise self._unknown_property(current, part)

    def _filtered(self, req: SimRequest, table: Table) -> list[dict[str, Any]]:
        params = req.params
        rows = list(self.db.rows[table.logical_name].values())
        if params.get("$filter"):
            node = Q.parse_filter(params["$filter"])
            self._check_paths(table, node)
            resolve = self._resolver(table)
            rows = [r for r in rows if Q.evaluate(node, r, resolve)]
        return rows

    def _query(self, req: SimRequest, table: Table) -> SimResponse:
        params = req.params
        if "$skip" in params:
            raise ODataError(400, "0x80060888", "The query parameter '$skip' is not supported.")
        if "odata.track-changes" in req.prefer or "$deltatoken" in params:
            return self._track_changes(req, table)
        select = self._select(table, params.get("$select"))
        expand = Q.parse_expand(params["$expand"]) if params.get("$expand") else None
        rows = self._filtered(req, table)
        order = Q.parse_orderby(params["$orderby"]) if params.get("$orderby") else []
        for col, _ in order:
            self._check_paths(table, Q.Path(col))
        rows.sort(key=lambda r: r["__seq"])
        resolve = self._resolver(table)
        for col, desc in reversed(order):
            rows.sort(key=lambda r, c=col: _sort_key(resolve(r, c)), reverse=desc)
        headers: dict[str, str] = {}
        applied = []
        page_size = self.config.max_page_size
        maxpage = req.prefer.get("odata.maxpagesize")
        if maxpage is not None:
            try:
                page_size = max(1, min(int(maxpage), self.config.max_page_size))
            except ValueError as exc:
                raise ODataError(400, "0x80060888", f"Invalid odata.maxpagesize '{maxpage}'.") from exc
            applied.append(f"odata.maxpagesize={page_size}")
        elif params.get("$top"):
            try:
                top = int(params["$top"])
            except ValueError as exc:
                raise ODataError(400, "0x80060888", f"Invalid $top '{params['$top']}'.") from exc
            rows = rows[:top]
        total = len(rows)
        offset = 0
        if "$skiptoken" in params:
            offset = self._decode_skiptoken(params["$skiptoken"], req)
        page = rows[offset : offset + page_size]
        body: dict[str, Any] = {
            "@odata.context": f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}"
            + (f"({params['$select'].replace(' ', '')})" if select else ""),
        }
        if params.get("$count") == "true":
            body["@odata.count"] = min(total, 5000)
        wanted = self.annotations_wanted(req)
        if wanted:
            applied.append(f'odata.include-annotations="{req.prefer["odata.include-annotations"]}"')
            if any(w in ("*", "Microsoft.Dynamics.CRM.totalrecordcount") for w in wanted):
                body["@Microsoft.Dynamics.CRM.totalrecordcount"] = (
                    total if params.get("$count") == "true" else -1
                )
                body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > 5000
        body["value"] = [self.render(table, r, select, req, expand=expand) for r in page]
        if offset + page_size < total:
            body["@odata.nextLink"] = self._next_link(req, offset + page_size, offset // page_size + 2)
        if applied:
            headers["Preference-Applied"] = ",".join(applied)
        return SimResponse.json(200, body, headers)

    def _query_fingerprint(self, req: SimRequest) -> str:
        params = {k: v for k, v in parse_qsl(req.query, keep_blank_values=True) if k != "$skiptoken"}
        return hashlib.sha256((req.path + json.dumps(sorted(params.items()))).encode()).hexdigest()[:16]

    def _next_link(
        self, req: SimRequest, offset: int, page_number: int, extra: dict[str, Any] | None = None
    ) -> str:
        cookie_data = {"o": offset, "q": self._query_fingerprint(req), **(extra or {})}
        paging = base64.urlsafe_b64encode(json.dumps(cookie_data).encode()).decode()
        cookie = (
            f'<cookie pagenumber="{page_number}" pagingcookie="{quote(paging)}" '
            f'istracking="{"True" if extra else "False"}" />'
        )
        kept = "&".join(
            p
            for p in req.query.split("&")
            if p and not p.startswith("%24skiptoken=") and not p.startswith("$skiptoken=")
        )
        sep = "&" if kept else ""
        return f"{req.base_url}{API_PREFIX}{req.path}?{kept}{sep}$skiptoken={quote(cookie, safe='')}"

    def _decode_skiptoken(self, token: str, req: SimRequest, *, want: str | None = None) -> Any:
        m = re.search(r'pagingcookie="([^"]*)"', token)
        try:
            assert m is not None
            data = json.loads(base64.urlsafe_b64decode(unquote(m.group(1)).encode()))
        except Exception as exc:
            raise ODataError(
                400, "0x80060888", "The $skiptoken is not valid. Follow @odata.nextLink verbatim."
            ) from exc
        if data.get("q") != self._query_fingerprint(req):
            raise ODataError(
                400,
                "0x80060888",
                "The $skiptoken does not belong to this query. Follow @odata.nextLink verbatim.",
            )
        return data if want == "all" else int(data["o"])


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.lower())
    if isinstance(value, bool):
        return (1, int(value))
    return (1, value)
