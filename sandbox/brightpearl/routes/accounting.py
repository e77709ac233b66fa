"""accounting-service: customer payments, journals, tax codes, payment search."""

from __future__ import annotations

import re

from sandbox.brightpearl.envelope import Reply, Req, id_set, ok
from sandbox.brightpearl.errors import ApiError
from sandbox.brightpearl.routes.base import RouteBase


class AccountingRoutes(RouteBase):
    def post_payment(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_payment(req.body or {}))

    def post_journal(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_journal(req.body or {}))

    def get_journals(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            items = [
                dict(self.state.journals[i])
                for i in id_set(m["ids"], self.config.get_limit)
                if i in self.state.journals
            ]
        if not items:
            raise ApiError(404, "CMNC-404", "No Journal Found")
        return ok({"journals": items})

    def get_tax_codes(self, req: Req, m: re.Match[str]) -> Reply:
        return self._listing(m, "tax_codes", "Tax Code")
