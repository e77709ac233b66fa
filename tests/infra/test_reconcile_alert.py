"""The reconciliation drift alert (issue 16 item 1): a scheduled-query rule on the metric the
reconcile run emits, with a threshold parameter, acting through the operators' action group."""

from __future__ import annotations

from shared.reconcile.report import KINDS
from tests.infra import infra_checks as checks


def test_a_drift_count_over_the_threshold_raises_an_alert() -> None:
    parsed = checks.parse_bicep(checks.INFRA_DIR / "modules" / "alerts.bicep")
    rule = next(
        r
        for r in parsed["resources"].values()
        if r["type"] == "Microsoft.Insights/scheduledQueryRules" and "reconcile_findings" in str(r)
    )
    props = rule["config"]["properties"]
    criterion = props["criteria"]["allOf"][0]
    assert '"bpsync.reconcile_findings"' in criterion["query"] and '"drift"' in criterion["query"]
    assert "drift" in KINDS
    assert (criterion["metricMeasureColumn"], criterion["timeAggregation"]) == ("drift", "Total")
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", "reconcileDriftThreshold")
    assert props["windowSize"] == "P1D" and props["enabled"] is True
    assert "actionGroup" in str(props["actions"])
    # the name the run emits (shared/reconcile/engine.py adds to this counter)
    assert '"bpsync.reconcile_findings"' in (checks.INFRA_DIR.parent / "shared" / "telemetry.py").read_text()
