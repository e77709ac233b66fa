"""integration-service: webhook subscriptions, webhook simulation, account configuration."""

from __future__ import annotations

import re

from sandbox.brightpearl.envelope import Reply, Req, id_set, ok
from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.routes.base import RouteBase
from sandbox.brightpearl.webhooks import WebhookDispatcher


class IntegrationRoutes(RouteBase):
    dispatcher: WebhookDispatcher

    def get_webhooks(self, req: Req, m: re.Match[str]) -> Reply:
        return self._listing(m, "webhooks", "Webhook")

    def post_webhook(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_webhook(req.body or {}))

    def delete_webhooks(self, req: Req, m: re.Match[str]) -> Reply:
        with self.state.lock:
            ids = [i for i in id_set(m["ids"]) if i in self.state.webhooks]
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
        ids = id_set(variables.get("resource-id", ""), self.config.webhook_simulate_limit)
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
                "baseCurrencyCode": self.state.currencies[self.state.base_currency_id]["code"],
                "taxScheme": "UK_VAT",
                "timeZone": "Europe/London",
                "defaultOrderStatusId": self.state.default_status["SO"],
                "brightpearlVersion": self.config.brightpearl_version,
            }
        )
