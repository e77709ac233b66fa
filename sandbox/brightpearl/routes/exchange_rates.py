"""accounting-service exchange rates and currency search (reference brightpearl-api.md §9)."""

from __future__ import annotations

import re

from sandbox.brightpearl.envelope import Reply, Req, ok
from sandbox.brightpearl.routes.base import RouteBase


class ExchangeRateRoutes(RouteBase):
    def get_exchange_rates(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.list_exchange_rates())

    def post_exchange_rate(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.add_exchange_rate(int(m["id"]), req.body or {}))

    def put_exchange_rate(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.update_exchange_rate(int(m["id"]), req.body or {}))
