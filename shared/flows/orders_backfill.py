"""Orders backfill: the Dynamics and Brightpearl sales orders' listings for the generic backfill
(shared/sync/backfill.py).

Dynamics raises its own orders, so `syncctl backfill orders [--since DATE]` reads Dataverse
by default: salesorders modified since the date, oldest first, then by salesorderid, following
`@odata.nextLink` (a resumed run re-reads the skipped pages, ids only). The notices are
`salesorder` notices on the Dataverse changes topic; orders-to-brightpearl does the rest as for a
webhook: an order not created yet is created exactly once (its creation claim and the look-up by
externalRef), a linked one is compared with its Brightpearl order, one the trigger setting does
not select (not submitted, canceled) is skipped.

`syncctl backfill orders --from brightpearl [--since DATE]` reads Brightpearl's sales orders
(order-search, orderTypeId 1, by updatedOn) and publishes `order` notices on the Brightpearl
changes topic: orders-to-dataverse copies the Brightpearl-born ones to Dynamics (order history,
exactly once: shared/flows/orders_history.py) and writes back the others' status.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from shared.flows.orders_poller import SALES_ORDER_TYPE
from shared.sync.backfill import IdPage, dataverse_pages, search_pages

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient
    from shared.sync.ports import BrightpearlPort


def list_dataverse_orders(
    client: DataverseClient, *, since: datetime | None, position: int, page_size: int
) -> Iterator[IdPage]:
    """Dynamics sales orders modified since `since` (every one without it), oldest first."""
    return dataverse_pages(
        client, "salesorders", "salesorderid", since=since, position=position, page_size=page_size
    )


def list_brightpearl_orders(
    client: BrightpearlPort, *, since: datetime | None, position: int, page_size: int
) -> Iterator[IdPage]:
    """Brightpearl sales orders (order-search orderTypeId 1) updated since `since` (every one
    without it; an order created since then was updated since then too), by orderId."""
    rows = client.search_orders(
        updated_since=since, columns=["orderId"], sort="orderId.ASC", orderTypeId=SALES_ORDER_TYPE
    )
    return search_pages(rows, "orderId", position, page_size)
