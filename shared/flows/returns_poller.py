"""The Brightpearl sales-credit poller: order-search for order type SC (orderTypeId 3) by
`updatedOn` (reference §4.2), publishing `sales-credit` notices (returns-to-dataverse, and any
other flow subscribed to them). The contact poller's watermark-and-overlap recipe
(shared/flows/pollers.py). Sales-credit webhooks are unconfirmed (shared/flows/returns_spec.py),
so this is the trigger, not only a backstop; a refund (customer payment) moves updatedOn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.flows.orders_poller import BrightpearlOrderPoller
from shared.flows.returns_spec import CREDIT_ENTITY, RETURNS
from shared.sync.spec import PollerSpec

SALES_CREDIT_TYPE = 3  # order-search orderTypeId: 3 SC (reference §4.2)


@dataclass(kw_only=True)
class BrightpearlCreditPoller(BrightpearlOrderPoller):
    """The order poller's search for order type SC; sales-credit notices."""

    spec: ClassVar[PollerSpec] = RETURNS.pollers[0]
    entity: ClassVar[str] = CREDIT_ENTITY
    order_type: ClassVar[int] = SALES_CREDIT_TYPE
