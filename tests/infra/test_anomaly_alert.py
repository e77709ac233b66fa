"""The anomaly alert (issue 16 item 3): a scheduled-query rule on the custom event every anomaly
flag sends, split by kind, with a threshold parameter, acting through the operators' action group."""

from __future__ import annotations

from shared.anomaly.flags import EVENT, KINDS
from tests.infra import infra_checks as checks


def test_an_anomaly_flag_raises_an_alert_per_kind() -> None:
    parsed = checks.parse_bicep(checks.INFRA_DIR / "modules" / "alerts.bicep")
    rule = next(
        r
        for r in parsed["resources"].values()
        if r["type"] == "Microsoft.Insights/scheduledQueryRules" and EVENT in str(r)
    )
    props = rule["config"]["properties"]
    criterion = props["criteria"]["allOf"][0]
    assert f'customEvents | where name == "{EVENT}"' in criterion["query"]
    assert "customDimensions.kind" in criterion["query"]
    assert [d["name"] for d in criterion["dimensions"]] == ["kind"]
    assert (criterion["timeAggregation"], criterion["operator"]) == ("Count", "GreaterThan")
    assert criterion["threshold"] == "anomalyThreshold"
    assert props["enabled"] is True and "actionGroup" in str(props["actions"])
    # the rule's description names every kind a flag can carry
    assert all(
        kind in props["description"] or kind in (checks.INFRA_DIR / "modules" / "alerts.bicep").read_text()
        for kind in KINDS
    )
