"""Stock anomalies through the running sandbox (issue 16 item 3): ordinary stock corrections and a
sweep raise no flag; stock corrected down to zero is flagged StockDepleted; a stock change whose
webhooks were lost, found by the sweep, is flagged StockMismatch (and repaired)."""

from __future__ import annotations

from shared.anomaly.flags import AUDIT_FLOW
from tests.e2e.stock.conftest import StockSandbox


def flags(st: StockSandbox) -> list[tuple[str | None, str]]:
    return [(e.reason_code, e.source_id) for e in st.sb.store.audit.recent(AUDIT_FLOW, 100)]


def test_a_clean_run_raises_no_flag_then_zero_stock_and_a_lost_change_are_flagged(
    stock_sandbox: StockSandbox,
) -> None:
    st = stock_sandbox
    mug, cap = st.sb.create("ANOM-1", "Anomaly Mug"), st.sb.create("ANOM-2", "Anomaly Cap")
    st.settle()
    st.correct(mug, 5)
    st.correct(cap, 3)
    st.settle()
    st.correct(mug, -1)
    st.settle()
    st.run("sweep_brightpearl_stock")
    st.settle()
    assert (st.stock(mug), st.stock(cap)) == (4, 3)
    assert flags(st) == []  # a clean run: zero flags

    st.correct(cap, -3)  # sold out
    st.settle()
    assert st.stock(cap) == 0
    assert flags(st) == [("AnomalyStockDepleted", str(cap))]

    st.sb.lose_next_webhooks(2)  # both hooks the on-hand-modified event matches
    st.correct(mug, 2)
    st.settle()
    assert st.stock(mug) == 4  # the change never arrived
    st.sb.clock.advance(60)  # a later round (the fake clock stamps the sweep's notices)
    st.run("sweep_brightpearl_stock")
    st.settle()

    assert st.stock(mug) == 6  # repaired by the sweep, and flagged
    assert flags(st)[0] == ("AnomalyStockMismatch", str(mug))
    [row] = [e for e in st.sb.store.audit.recent(AUDIT_FLOW, 10) if e.reason_code == "AnomalyStockMismatch"]
    assert "Dynamics holding 4 while Brightpearl has 6" in row.description
