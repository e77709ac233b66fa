"""The Brightpearl stock poller: the backstop for lost stock webhooks (issue 12 item 4).

Stock has no `updatedOn` (a stock movement does not move the product's), so product-search
cannot find it. Every stock correction, goods-in and shipped goods-out leaves a goods movement
with its own `updatedOn`, so this poller reads `goods-movement-search` by `updatedOn` from its
watermark minus the overlap window (the contact poller's recipe, shared/flows/pollers.py) and
publishes `product-stock` notices for the products that moved; the stock flow re-reads their
availability and writes only changed figures. What it cannot see (allocation) is what
`BrightpearlStockSweep` re-reads; both costs: docs/architecture.md "Stock backstop".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from shared.brightpearl.ratebudget import RateBudget, poll_may_run
from shared.dataverse import odata
from shared.flows.pollers import BrightpearlContactPoller, Poller, PollReport, notices_for
from shared.flows.products_to_dataverse import product_mapping_path
from shared.flows.stock_spec import STOCK, STOCK_ENTITY, SWEEP
from shared.flows.stock_to_dataverse import AVAILABILITY_IDS, KEY
from shared.mapping.stock import load_stock_settings
from shared.sync.ports import DataversePort
from shared.sync.spec import PollerSpec
from shared.telemetry import get_logger

log = get_logger("flows.stock_poller")


@dataclass(kw_only=True)
class BrightpearlStockPoller(BrightpearlContactPoller):
    """goods-movement-search by updatedOn from the watermark minus the overlap; notices of
    entity `product-stock` (one id per product however many movements it had)."""

    spec: ClassVar[PollerSpec] = STOCK.pollers[0]
    entity: ClassVar[str] = STOCK_ENTITY
    id_column: ClassVar[str] = "productId"

    def search(self, since: datetime) -> Iterable[dict[str, Any]]:
        return self.client.search_goods_movements(updated_since=since, columns=["productId", "updatedOn"])


@dataclass(kw_only=True)
class BrightpearlStockSweep(Poller):
    """The rolling re-read: each run names the next `ids_per_run` products Dynamics has (by
    `bpi_brightpearlid`, in string order from the cursor; the end of the list starts over) in
    `product-stock` notices marked `sweep`. The stock flow reads their availability (one call
    per 200) and writes only changed figures; an unchanged swept product leaves no audit row.
    It catches what no goods movement shows (allocation by an unshipped goods-out note). A
    short rate budget skips the round (the flows come first)."""

    spec: ClassVar[PollerSpec] = STOCK.pollers[1]
    dataverse: DataversePort
    ids_per_run: int = 400
    budget: RateBudget | None = None  # the Brightpearl client's: the flow's reads come out of it

    @classmethod
    def from_runtime(cls) -> BrightpearlStockSweep:
        from shared import runtime

        s = runtime.settings()
        settings = load_stock_settings(product_mapping_path())
        return cls(
            dataverse=runtime.dataverse(),
            cursors=runtime.state_store().cursors,
            publish=runtime.publisher_to(cls.spec.topic_setting),
            clock=runtime.clock,
            source=f"/brightpearl/{s.brightpearl.account}",
            per_notice=s.customers.ids_per_notice,
            ids_per_run=settings.sweep_ids_per_run,
            budget=runtime.brightpearl().transport.budget,
        )

    def poll(self) -> PollReport:
        calls = math.ceil(self.ids_per_run / AVAILABILITY_IDS)
        if self.ids_per_run <= 0 or not poll_may_run(self.budget, self.spec.function_name, calls):
            return PollReport(skipped=True)
        cursor_name = self.spec.cursors[0]
        cursor = self.cursors.get(cursor_name)
        after = cursor.value if cursor is not None else ""
        page = odata.ne(KEY, None)
        ids = [
            str(row.get(KEY))
            for row in self.dataverse.query(
                "products",
                select=[KEY],
                filter=odata.all_of(page, odata.gt(KEY, after)) if after else page,
                orderby=[f"{KEY} asc"],
                top=self.ids_per_run,
            )
        ]
        report = PollReport(records=len(ids))
        if ids:
            now = self.clock()
            stamp = now.isoformat()  # each round's notices are new (no duplicate detection)
            envelopes = notices_for(
                "brightpearl",
                STOCK_ENTITY,
                [(i, stamp) for i in ids],
                source=self.source,
                origin="poller",
                observed_at=now,
                per_notice=self.per_notice,
                detail={SWEEP: True},
            )
            self.publish(envelopes)
            report.published = len(envelopes)
        if len(ids) < self.ids_per_run:  # the end of the list: the next run starts over
            if cursor is not None:
                self.cursors.delete(cursor_name, etag=cursor.etag)
        else:
            report.cursor = ids[-1]
            self.cursors.save(cursor_name, ids[-1], etag=cursor.etag if cursor else None)
        log.info("brightpearl stock sweep: %d products in %d notices", report.records, report.published)
        return report
