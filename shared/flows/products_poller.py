"""The Brightpearl product poller: product-search by `updatedOn` (the backstop for lost product
webhooks), the contact poller's watermark-and-overlap recipe (shared/flows/pollers.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from shared.flows.pollers import BrightpearlContactPoller
from shared.flows.products_spec import PRODUCTS
from shared.sync.backfill import IdPage, search_pages
from shared.sync.ports import BrightpearlPort
from shared.sync.spec import PollerSpec


@dataclass(kw_only=True)
class BrightpearlProductPoller(BrightpearlContactPoller):
    """product-search by updatedOn from the watermark minus the overlap; notices of entity product."""

    spec: ClassVar[PollerSpec] = PRODUCTS.pollers[0]
    entity: ClassVar[str] = "product"
    id_column: ClassVar[str] = "productId"

    def search(self, since: datetime) -> Iterable[dict[str, Any]]:
        return self.client.search_products(updated_since=since, columns=["productId", "updatedOn"])


def list_brightpearl_products(
    client: BrightpearlPort, *, since: datetime | None, position: int, page_size: int
) -> Iterator[IdPage]:
    """Every Brightpearl product (the poller's product-search, productId ascending) for a
    backfill, from row `position + 1` (shared/sync/backfill.py)."""
    rows = client.search_products(updated_since=since, columns=["productId"])
    return search_pages(rows, "productId", position, page_size)
