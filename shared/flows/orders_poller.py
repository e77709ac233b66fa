"""The Brightpearl order poller: order-search by `updatedOn` (reference §4.2), the backstop of the
write-back (orders-to-dataverse). It catches lost status and shipment webhooks, and brings
invoices and payments, which raise no documented webhook (reference §10.3). The contact
poller's watermark-and-overlap recipe (shared/flows/pollers.py); sales orders only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from shared.flows.orders_spec import ORDERS
from shared.flows.pollers import BrightpearlContactPoller
from shared.sync.spec import PollerSpec

SALES_ORDER_TYPE = 1  # order-search orderTypeId: 1 SO (reference §4.2)


@dataclass(kw_only=True)
class BrightpearlOrderPoller(BrightpearlContactPoller):
    """order-search by updatedOn from the watermark minus the overlap; notices of entity order."""

    spec: ClassVar[PollerSpec] = next(p for p in ORDERS.pollers if p.system == "brightpearl")
    entity: ClassVar[str] = "order"
    id_column: ClassVar[str] = "orderId"
    order_type: ClassVar[int] = SALES_ORDER_TYPE  # the orderTypeId searched

    def search(self, since: datetime) -> Iterable[dict[str, Any]]:
        return self.client.search_orders(
            updated_since=since,
            columns=["orderId", "updatedOn"],
            sort="updatedOn.ASC",
            orderTypeId=self.order_type,
        )
