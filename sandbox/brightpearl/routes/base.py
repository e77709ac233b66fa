"""What every resource's handlers share: state and settings, search, OPTIONS, list and by-id GETs."""

from __future__ import annotations

import re
from typing import Any

from sandbox.brightpearl import search as searches
from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.envelope import Reply, Req, found, id_set, ok
from sandbox.brightpearl.state import SimState
from shared.brightpearl.idset import format_id_set


class RouteBase:
    config: SimulatorConfig
    state: SimState

    def search(self, req: Req, m: re.Match[str]) -> Reply:
        response, reference = searches.run_search(self.state, "/" + req.path, req.params)
        payload: dict[str, Any] = {"response": response, "reference": reference}
        return Reply(200, payload)

    def search_meta(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(searches.search_meta("/" + req.path.removesuffix("/meta-data")))

    def _options(self, req: Req, m: re.Match[str], table: dict[int, Any], resource: str) -> Reply:
        with self.state.lock:
            present = [i for i in id_set(m["ids"]) if i in table]
        limit = self.config.get_limit
        uris = [f"{resource}/{format_id_set(present[i : i + limit])}" for i in range(0, len(present), limit)]
        return ok({"getUris": uris})

    def _listing(self, m: re.Match[str], table: str, what: str) -> Reply:
        """GET of a reference table (`state.<table>`): the ids named, any number, else all."""
        with self.state.lock:
            records = getattr(self.state, table)
            ids = id_set(m["ids"]) if m["ids"] else sorted(records)
            items = [dict(records[i]) for i in ids if i in records]
        return found(items, what)

    def _custom_field_meta(self, m: re.Match[str], table: str) -> Reply:
        """custom-field-meta-data (reference §5.7, §6.8): the definitions in `state.<table>`
        (by code), those with the ids named, else all."""
        with self.state.lock:
            items = [dict(meta) for meta in getattr(self.state, table).values()]
        if m["ids"]:
            wanted = set(id_set(m["ids"]))
            items = [i for i in items if i["id"] in wanted]
        return found(items, "Custom Field")

    def _by_ids(self, m: re.Match[str], table: str, what: str) -> Reply:
        """GET of records (`state.<table>`) by an id set of at most `get_limit` ids."""
        with self.state.lock:
            records = getattr(self.state, table)
            items = [dict(records[i]) for i in id_set(m["ids"], self.config.get_limit) if i in records]
        return found(items, what)
