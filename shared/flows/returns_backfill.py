"""Returns backfill: Brightpearl's sales credits for the generic backfill (shared/sync/backfill.py).

`syncctl backfill returns [--since DATE]` reads Brightpearl's sales credits (order-search,
orderTypeId 3 SC, by updatedOn; every credit without --since) and publishes `sales-credit`
notices on the Brightpearl changes topic: returns-to-dataverse opens each credit's case exactly
once (or finds it by its alternate key), resolves the refunded and cancels the cancelled ones;
every other flow taking `sales-credit` notices sees them too. Brightpearl is the credits' master,
so it is the only source.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from shared.flows.returns_poller import SALES_CREDIT_TYPE
from shared.sync.backfill import IdPage, search_pages

if TYPE_CHECKING:
    from shared.sync.ports import BrightpearlPort


def list_brightpearl_credits(
    client: BrightpearlPort, *, since: datetime | None, position: int, page_size: int
) -> Iterator[IdPage]:
    """Brightpearl sales credits updated since `since` (every one without it), by orderId."""
    rows = client.search_orders(
        updated_since=since, columns=["orderId"], sort="orderId.ASC", orderTypeId=SALES_CREDIT_TYPE
    )
    return search_pages(rows, "orderId", position, page_size)
