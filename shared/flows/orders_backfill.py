"""Orders backfill: the Dynamics sales orders' listing for the generic backfill
(shared/sync/backfill.py).

Dataverse is the master of orders, so `syncctl backfill orders [--since DATE]` reads only
Dataverse: salesorders modified since the date, oldest first, then by salesorderid, following
`@odata.nextLink` (a resumed run re-reads the skipped pages, ids only). The notices are
`salesorder` notices on the Dataverse changes topic; orders-to-brightpearl does the rest as for a
webhook: an order not created yet is created exactly once (its creation claim and the look-up by
externalRef), a linked one is compared with its Brightpearl order, one the trigger setting does
not select (not submitted, canceled) is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from shared.sync.backfill import IdPage, dataverse_pages

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient


def list_dataverse_orders(
    client: DataverseClient, *, since: datetime | None, position: int, page_size: int
) -> Iterator[IdPage]:
    """Dynamics sales orders modified since `since` (every one without it), oldest first."""
    return dataverse_pages(
        client, "salesorders", "salesorderid", since=since, position=position, page_size=page_size
    )
