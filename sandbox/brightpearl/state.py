"""The simulator's in-memory Brightpearl account: one object composed of a store per resource.

Each resource keeps its tables, reference data, seeding and write rules (validation, derived
statuses, time stamps, webhook events) in its own module under `sandbox.brightpearl.records`;
this class only composes them, resets them and seeds them in order. A new resource is a new
store module, a base class here and one line in `reset` (and in `seed` if it is seeded).
"""

from __future__ import annotations

import random
import threading

from faker import Faker

from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.errors import ApiError, bad
from sandbox.brightpearl.records.accounting import AccountingStore
from sandbox.brightpearl.records.amounts import fmt, money
from sandbox.brightpearl.records.contacts import ContactStore
from sandbox.brightpearl.records.core import EventSink
from sandbox.brightpearl.records.exchange_rates import ExchangeRateStore
from sandbox.brightpearl.records.orders import OrderStore
from sandbox.brightpearl.records.products import ProductStore
from sandbox.brightpearl.records.reservations import ReservationStore
from sandbox.brightpearl.records.subscriptions import SubscriptionStore
from sandbox.brightpearl.records.warehouse import WarehouseStore

__all__ = ["ApiError", "EventSink", "SimState", "bad", "fmt", "money"]


class SimState(
    ContactStore,
    ProductStore,
    OrderStore,
    WarehouseStore,
    ReservationStore,
    AccountingStore,
    ExchangeRateStore,
    SubscriptionStore,
):
    """One simulated Brightpearl installation (all accounts share the data set)."""

    def __init__(self, config: SimulatorConfig, emit: EventSink | None = None) -> None:
        self.config = config
        self.lock = threading.RLock()
        self._emit = emit or (lambda event, ids, at: None)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        with self.lock:
            self._reset_core()
            self._reset_contacts()
            self._reset_products()
            self._reset_orders()
            self._reset_warehouse()
            self._reset_reservations()
            self._reset_accounting()
            self._reset_exchange_rates()
            self._reset_subscriptions()
            self.faker = Faker("en_GB")
            self.rng = random.Random(self.config.seed if seed is None else seed)
            self.faker.seed_instance(self.config.seed if seed is None else seed)
            self.seed(self.config.seed_contacts, self.config.seed_products, self.config.seed_orders)

    def seed(self, contacts: int = 0, products: int = 0, orders: int = 0) -> dict[str, list[int]]:
        """Add realistic records (Faker, seeded); returns the new ids by kind. Orders are
        seeded last: they need customers and priced products."""
        with self.lock, self.seeding():
            return {
                "contacts": self._seed_contacts(contacts),
                "products": self._seed_products(products),
                "orders": self._seed_orders(orders),
            }
