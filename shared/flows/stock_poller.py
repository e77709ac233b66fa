"""The Brightpearl stock poller: the backstop for lost stock webhooks (issue 12 item 4).

Stock has no `updatedOn` (a stock movement does not move the product's), so product-search
cannot find it. Every stock correction, goods-in and shipped goods-out leaves a goods movement
with its own `updatedOn`, so this poller reads `goods-movement-search` by `updatedOn` from its
watermark minus the overlap window (the contact poller's recipe, shared/flows/pollers.py) and
publishes `product-stock` notices for the products that moved; the stock flow re-reads their
availability and writes only changed figures. What it cannot see, and its cost:
docs/architecture.md "Stock backstop".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from shared.flows.pollers import BrightpearlContactPoller
from shared.flows.stock_spec import POLL_ENTITY, STOCK
from shared.sync.spec import PollerSpec


@dataclass(kw_only=True)
class BrightpearlStockPoller(BrightpearlContactPoller):
    """goods-movement-search by updatedOn from the watermark minus the overlap; notices of
    entity `product-stock` (one id per product however many movements it had)."""

    spec: ClassVar[PollerSpec] = STOCK.pollers[0]
    entity: ClassVar[str] = POLL_ENTITY
    id_column: ClassVar[str] = "productId"

    def search(self, since: datetime) -> Iterable[dict[str, Any]]:
        return self.client.search_goods_movements(updated_since=since, columns=["productId", "updatedOn"])
