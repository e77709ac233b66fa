"""The Bicep parses, passes checkov (with our custom policies) and skips nothing without a reason."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.infra import infra_checks as checks


def test_every_bicep_file_parses_with_pycep():
    assert checks.check_bicep_syntax(checks.INFRA_DIR) == []
    # main.bicep plus its modules: the footprint is split the house-style way
    names = {p.relative_to(checks.INFRA_DIR).as_posix() for p in checks.bicep_files(checks.INFRA_DIR)}
    assert {"main.bicep", "modules/functionapp.bicep", "modules/servicebus.bicep",
            "modules/servicebus-topic.bicep", "modules/keyvault.bicep", "modules/storage.bicep"} <= names


def test_module_calls_match_the_modules_params_and_outputs():
    assert checks.check_module_wiring(checks.INFRA_DIR) == []


def test_bicepparam_sets_declared_params_with_allowed_values():
    assert checks.check_bicepparam(checks.INFRA_DIR) == []


def test_checkov_finds_no_failed_checks_and_no_parsing_errors(checkov_report: dict[str, Any]):
    assert checks.checkov_problems(checkov_report) == []
    assert checkov_report["passed"], "checkov evaluated nothing: are the .bicep files found?"


def test_custom_policies_run_on_bicep_and_pass(checkov_report: dict[str, Any]):
    source = (checks.INFRA_DIR / "policies" / "sync_bicep_policies.py").read_text(encoding="utf-8")
    defined = set(re.findall(r'id="(CKV_BPSYNC_\d+)"', source))
    passed = {c["check_id"] for c in checkov_report["passed"]}
    assert len(defined) >= 8
    assert defined <= passed, f"custom policies that never ran: {sorted(defined - passed)}"


def test_every_checkov_skip_is_justified_in_the_file(checkov_report: dict[str, Any]):
    assert checks.check_skip_justifications(checks.INFRA_DIR) == []
    # and checkov really honoured them (a skip without effect would hide nothing and mean nothing)
    for skipped in checkov_report["skipped"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) >= 20


def test_role_assignments_use_the_built_in_role_ids():
    main = checks.parse_bicep(checks.INFRA_DIR / "main.bicep")
    roles = main["variables"]["roles"]["value"]
    assert roles == {
        "serviceBusDataSender": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
        "serviceBusDataReceiver": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
        "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
        "keyVaultSecretsOfficer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    }
    # every role above is granted by a role module (Secrets Officer only in oauth mode)
    dumped = json.dumps(main["modules"])
    for role in roles:
        assert f'"operand_2": "{role}"' in dumped, f"role {role} is never assigned"
    officer = next(m for m in main["modules"].values() if '"keyVaultSecretsOfficer"' in json.dumps(m))
    assert "condition" in officer["config"], "Secrets Officer must be conditional on OAuth rotation"


def test_alerts_cover_dead_letters_failures_and_throttling():
    alerts = checks.parse_bicep(checks.INFRA_DIR / "modules" / "alerts.bicep")["resources"]
    metric = next(r for r in alerts.values() if r["type"] == "Microsoft.Insights/metricAlerts")
    criterion = metric["config"]["properties"]["criteria"]["allOf"][0]
    assert (criterion["metricName"], criterion["operator"], criterion["threshold"]) == (
        "DeadletteredMessages", "GreaterThan", 0)
    queries = [r["config"]["properties"]["criteria"]["allOf"][0]["query"]
               for r in alerts.values() if r["type"] == "Microsoft.Insights/scheduledQueryRules"]
    assert any("success == false" in q and "exceptions" in q for q in queries)
    assert any('"429"' in q and '"503"' in q for q in queries)
    group = next(r for r in alerts.values() if r["type"] == "Microsoft.Insights/actionGroups")
    assert group["config"]["properties"]["emailReceivers"][0]["emailAddress"] == "alertEmail"


def test_workbook_shows_throughput_failures_dead_letters_and_latency():
    main_text = (checks.INFRA_DIR / "main.bicep").read_text(encoding="utf-8")
    assert "loadTextContent('workbook.json')" in main_text
    workbook = json.loads((checks.INFRA_DIR / "workbook.json").read_text(encoding="utf-8"))
    assert workbook["version"] == "Notebook/1.0"
    titles = " | ".join(i["content"].get("title", "") for i in workbook["items"]).lower()
    for topic in ("throughput", "failure", "dead-letter", "latency"):
        assert topic in titles, f"workbook has no {topic} panel"
    queries = [i["content"]["query"] for i in workbook["items"] if i["type"] == 3]
    assert queries and all("{TimeRange}" in q for q in queries)
    # per-flow panels read the app's own metrics, keyed by the flow (subscription) name
    assert any('"bpsync.message_outcomes"' in q and "customDimensions.flow" in q for q in queries)
    assert any('"bpsync.end_to_end_latency"' in q for q in queries)
    metrics = [i for i in workbook["items"] if i["type"] == 10]
    assert metrics[0]["content"]["metrics"][0]["metric"].endswith("DeadletteredMessages")


def test_workbook_and_kql_read_metrics_the_app_emits():
    telemetry = (checks.ROOT / "shared" / "telemetry.py").read_text(encoding="utf-8")
    emitted = set(re.findall(r'"(bpsync\.[a-z_]+)"', telemetry))
    texts = [(checks.INFRA_DIR / "workbook.json").read_text(encoding="utf-8"),
             (checks.ROOT / "docs" / "operations.md").read_text(encoding="utf-8")]
    read = {name for text in texts for name in re.findall(r'name == \\?"(bpsync\.[a-z_]+)\\?"', text)}
    assert read, "no app metric is read"
    assert read <= emitted, f"metrics read but never emitted by shared/telemetry.py: {sorted(read - emitted)}"
