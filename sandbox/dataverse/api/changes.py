"""Change tracking: odata.track-changes, delta links and tokens, deleted entities."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sandbox.dataverse import errors as E
from sandbox.dataverse.api.base import EngineBase
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import (
    API_PREFIX,
    SimRequest,
    SimResponse,
)
from sandbox.dataverse.schema import Table


class Changes(EngineBase):
    def _track_changes(self, req: SimRequest, table: Table) -> SimResponse:
        params = req.params
        for option in ("$filter", "$orderby", "$expand", "$top"):
            if option in params:
                raise ODataError(
                    400,
                    "0x80060888",
                    f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.',
                )
        if not table.change_tracking:
            raise ODataError(
                400, "0x80060888", f"Change tracking is not enabled for entity '{table.logical_name}'."
            )
        select = self._select(table, params.get("$select"))
        since: int | None = None
        if "$deltatoken" in params:
            since = self._parse_delta_token(params["$deltatoken"])
        page_size = self.config.max_page_size
        maxpage = req.prefer.get("odata.maxpagesize")
        if maxpage is not None:
            page_size = max(1, min(int(maxpage), self.config.max_page_size))
        offset, snapshot = 0, self.db.version
        if "$skiptoken" in params:
            data = self._decode_skiptoken(params["$skiptoken"], req, want="all")
            offset, snapshot = int(data["o"]), int(data["v"])
        rows = sorted(self.db.rows[table.logical_name].values(), key=lambda r: r["__seq"])
        items: list[dict[str, Any]] = []
        if since is None:
            items = [
                self.render(table, r, select, req)
                for r in rows
                if r["__created_version"] <= snapshot and r["versionnumber"] <= snapshot
            ]
        else:
            items = [
                self.render(table, r, select, req) for r in rows if since < r["versionnumber"] <= snapshot
            ]
            present = set(self.db.rows[table.logical_name])
            for version, tname, rid in self.db.deletions:
                if tname == table.logical_name and since < version <= snapshot and rid not in present:
                    items.append(
                        {
                            "@odata.context": (
                                f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}/$deletedEntity"
                            ),
                            "id": rid,
                            "reason": "deleted",
                        }
                    )
        page = items[offset : offset + page_size]
        context = f"{req.base_url}{API_PREFIX}$metadata#{table.entity_set}" + (
            f"({params['$select'].replace(' ', '')})" if select else ""
        )
        body: dict[str, Any] = {
            "@odata.context": context + ("/$delta" if since is not None else ""),
            "value": page,
        }
        if offset + page_size < len(items):
            body["@odata.nextLink"] = self._next_link(
                req, offset + page_size, offset // page_size + 2, {"v": snapshot}
            )
        else:
            stamp = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%m/%d/%Y %H:%M:%S")
            token = f"{snapshot}!{stamp}"
            sel = f"$select={quote(params['$select'].replace(' ', ''), safe=',_')}&" if select else ""
            body["@odata.deltaLink"] = (
                f"{req.base_url}{API_PREFIX}{table.entity_set}?{sel}$deltatoken={quote(token, safe='')}"
            )
        applied = ["odata.track-changes"]
        if maxpage is not None:
            applied.append(f"odata.maxpagesize={page_size}")
        return SimResponse.json(200, body, {"Preference-Applied": ",".join(applied)})

    def _parse_delta_token(self, token: str) -> int:
        m = re.fullmatch(r"(\d+)!(\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2})", token)
        if not m:
            raise ODataError(400, "0x80060888", f"The delta token '{token}' is not valid.")
        issued = datetime.strptime(m.group(2), "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC).timestamp()
        if self.clock.now() - issued > self.config.change_tracking_expiry_days * 86400:
            # HTTP status and code UNCONFIRMED; message as reported in CTISSUE.
            raise ODataError(
                400,
                E.INVALID_ARGUMENT,
                "Version stamp associated with the client has expired. Please perform a full sync.",
            )
        return int(m.group(1))
