"""The timeline, customer group and `syncctl customers show` tests run in the orders sandbox
(tests/e2e/orders/conftest.py): a shop with a catalogue on both sides and a synced customer."""

from __future__ import annotations

from tests.e2e.orders.conftest import bp_server, dv_server, orders_sandbox, sandbox, sandbox_settings

__all__ = ["bp_server", "dv_server", "orders_sandbox", "sandbox", "sandbox_settings"]
