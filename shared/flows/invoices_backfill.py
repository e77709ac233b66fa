"""Invoices and payments backfill: Brightpearl's paid orders for the generic backfill
(shared/sync/backfill.py).

`syncctl backfill invoices [--since DATE]` reads Brightpearl's customer payments
(`customer-payment-search`, by `createdOn` since the date; every payment without it) and
publishes `order` notices for the orders they pay or refund, as the payment poller does for new
payments: invoices-to-dataverse creates each invoiced order's Dynamics invoice (once: its key)
and sets it Paid or Partial with the amount paid; every other `order` consumer sees them too.
Invoiced orders without payments come with `syncctl backfill orders --from brightpearl`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, cast

from shared.brightpearl.search import period
from shared.flows.invoices_to_dataverse import PAYMENT_SEARCH, PaymentSearch
from shared.sync.backfill import IdPage, search_pages


def list_brightpearl_paid_orders(
    client: object, *, since: datetime | None, position: int, page_size: int
) -> Iterator[IdPage]:
    """The orders of Brightpearl customer payments made since `since` (every payment without
    it), one id per payment in payment order (an order paid twice is named twice, which the
    flows read once per batch)."""
    searcher = cast(PaymentSearch, client)
    rows: Iterable[dict[str, Any]] = searcher.search(
        PAYMENT_SEARCH,
        filters={"createdOn": period(since)} if since else None,
        columns=["paymentId", "orderId"],
        sort="paymentId.ASC",
    )
    return search_pages(rows, "orderId", position, page_size)
