"""The Brightpearl sales-credit poller: order-search for order type SC (orderTypeId 3) by
`updatedOn` (reference §4.2), publishing `sales-credit` notices (returns-to-dataverse, and any
other flow subscribed to them). The contact poller's watermark-and-overlap recipe
(shared/flows/pollers.py). Sales-credit webhooks are unconfirmed (shared/flows/returns_spec.py),
so this is the trigger, not only a backstop; a refund (customer payment) moves updatedOn."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from shared.flows.pollers import BrightpearlContactPoller
from shared.flows.returns_spec import CREDIT_ENTITY, RETURNS
from shared.sync.spec import PollerSpec

SALES_CREDIT_TYPE = 3  # order-search orderTypeId: 3 SC (reference §4.2)


@dataclass(kw_only=True)
class BrightpearlCreditPoller(BrightpearlContactPoller):
    """order-search (SC) by updatedOn from the watermark minus the overlap; sales-credit notices."""

    spec: ClassVar[PollerSpec] = RETURNS.pollers[0]
    entity: ClassVar[str] = CREDIT_ENTITY
    id_column: ClassVar[str] = "orderId"

    def search(self, since: datetime) -> Iterable[dict[str, Any]]:
        return self.client.search_orders(
            updated_since=since,
            columns=["orderId", "updatedOn"],
            sort="updatedOn.ASC",
            orderTypeId=SALES_CREDIT_TYPE,
        )
