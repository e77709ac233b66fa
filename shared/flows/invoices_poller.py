"""The Brightpearl customer-payment poller: `customer-payment-search` by `createdOn` (reference
§4.2, §9). Payments raise no documented webhook (§10.3) and are not edited once made (a refund
is a new PAYMENT), so `createdOn` is their change stamp. Each round publishes `order` notices
for the orders whose payments were made since the watermark (minus the overlap window);
every `order` consumer sees them (invoices-to-dataverse sets the invoice Paid or Partial,
orders-to-dataverse the salesorder's payment status). The watermark is the newest `createdOn`
seen, and it moves only after the publish (the contact poller's recipe, shared/flows/pollers.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, cast

from shared.brightpearl.search import period
from shared.flows.invoices_spec import INVOICES
from shared.flows.invoices_to_dataverse import PAYMENT_SEARCH, PaymentSearch
from shared.flows.pollers import BrightpearlContactPoller
from shared.sync.spec import PollerSpec

STAMP = "createdOn"


@dataclass(kw_only=True)
class BrightpearlPaymentPoller(BrightpearlContactPoller):
    """customer-payment-search by createdOn from the watermark minus the overlap; notices of
    entity `order` naming the payments' orders."""

    spec: ClassVar[PollerSpec] = INVOICES.pollers[0]
    entity: ClassVar[str] = "order"
    id_column: ClassVar[str] = "orderId"

    def search(self, since: datetime) -> Iterable[dict[str, Any]]:
        """One row per payment, its order id and creation as the stamp the base poll reads
        (`updatedOn`); rows come oldest first, so an order's stamp is its newest payment's."""
        searcher = cast(PaymentSearch, self.client)
        rows = searcher.search(
            PAYMENT_SEARCH,
            filters={STAMP: period(since)},
            columns=["paymentId", "orderId", STAMP],
            sort=f"{STAMP}.ASC",
        )
        for row in rows:
            if row.get("orderId"):
                yield {"orderId": row["orderId"], "updatedOn": row.get(STAMP)}
