"""The Brightpearl simulator's `duplicate_external_ref: unique-with-instance` mode (the orders'
exactly-once e2e tests use it): only the documented compound key (externalRef with an
installedIntegrationInstanceId, reference §6.2) is unique, so a private app's second POST of an
externalRef makes a second order, as nothing documented stops it; with an instance id the
duplicate is refused as before."""

from __future__ import annotations

import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlValidationError

from .test_brightpearl_orders import by_external_ref
from .test_orders_products import order_body


def test_without_an_instance_id_an_external_ref_may_repeat(client: BrightpearlClient, sim: Simulator):
    sim.configure(duplicate_external_ref="unique-with-instance")
    try:
        private = order_body(sim, "private-1").wire()
        del private["installedIntegrationInstanceId"]
        first = client.create_sales_order(private)
        second = client.create_sales_order(private)
        assert second != first and sorted(by_external_ref(client, "private-1")) == [first, second]

        installed = order_body(sim, "installed-1")  # installedIntegrationInstanceId 1
        kept = client.create_sales_order(installed)
        with pytest.raises(BrightpearlValidationError, match=f"already used by order {kept}"):
            client.create_sales_order(installed)
    finally:
        sim.configure(duplicate_external_ref="error")
