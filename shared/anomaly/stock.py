"""Stock that drops to zero or below, and stock the two systems disagree on after a sync.

Judged after stock-to-dataverse settles, from the figure Dynamics held before the batch and the
figure Brightpearl has (both already read by the flow: no extra request):

- `StockDepleted`: a product whose written figure is zero or below while Dynamics held a
  positive one;
- `StockMismatch`: the stock sweep (the rolling re-read, not a stock event) found Dynamics holding
  a figure other than Brightpearl's although the measure (onHand) only moves with announced goods
  movements (a lost webhook, or an edit in Dynamics; the flow repaired it), or Dynamics refused
  the new figure and still holds another one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.anomaly.flags import Flag
from shared.anomaly.watch import Watch
from shared.flows.stock_spec import SWEEP
from shared.outcomes import Outcome
from shared.sync.outcomes import BatchResults


def _sweep_only(batch: Any) -> set[str]:
    """Ids only the stock sweep named in this batch (no stock event announced a change)."""
    swept = {i for e in batch.envelopes if e.notice.detail.get(SWEEP) for i in e.notice.ids}
    return swept - {i for e in batch.envelopes if not e.notice.detail.get(SWEEP) for i in e.notice.ids}


def _moves_only(flow: Any) -> bool:
    """Does the flow's figure change only with goods movements (measure onHand), each announced
    by a webhook and the goods-movement poller? Allocation (inStock, allocated) changes with no
    event, so the sweep finding those moved is its normal work, not an anomaly."""
    settings = getattr(flow, "settings", None)
    return getattr(settings, "measure", "onHand") == "onHand"


class StockWatch(Watch):
    def after_settle(
        self, flow: Any, batch: Any, results: BatchResults, outcomes: Sequence[Outcome]
    ) -> list[Flag]:
        flags: list[Flag] = []
        swept = _sweep_only(batch)
        for r in batch.records:
            result = results.by_id.get(r.source_id)
            if result is None or r.decision is None or r.target is None:
                continue
            new = r.decision.payload.available
            held = flow.to_canonical("dataverse", r.target).value.available
            if result.kind == "synced" and new is not None and new <= 0 and held is not None and held > 0:
                flags.append(
                    self.flag(
                        flow, "StockDepleted", r.source_id, f"available stock fell from {held:f} to {new:f}"
                    )
                )
            if held is None or new is None or held == new:
                continue
            if result.kind == "synced" and r.source_id in swept and _moves_only(flow):
                flags.append(
                    self.flag(
                        flow,
                        "StockMismatch",
                        r.source_id,
                        f"the stock sweep found Dynamics holding {held:f} while Brightpearl has {new:f} "
                        "with no stock change announced (repaired)",
                    )
                )
            elif result.kind == "fatal":
                flags.append(
                    self.flag(
                        flow,
                        "StockMismatch",
                        r.source_id,
                        f"Dynamics still holds {held:f} while Brightpearl has {new:f}: the write was refused "
                        f"({result.reason})",
                    )
                )
        return flags
