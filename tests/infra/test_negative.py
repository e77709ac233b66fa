"""Acceptance: breaking a rule on purpose makes the infra checks fail with a clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.bus.topology import Topology, load_topology
from tests.infra import infra_checks as checks
from tests.infra.copies import BREAKS, break_file, copy_infra


def failures_in(report: dict[str, Any]) -> dict[str, str]:
    return {c["check_id"]: c["check_name"] for c in report["failed"]}


@pytest.mark.parametrize(
    ("copy", "check_id", "words"),
    [
        ("blob-public", "CKV_BPSYNC_1", "allowBlobPublicAccess: false"),
        ("purge-off", "CKV_BPSYNC_4", "enablePurgeProtection"),
        ("tls10", "CKV_BPSYNC_2", "minimumTlsVersion: 'TLS1_2'"),
        ("sb-tls10", "CKV_BPSYNC_6", "Service Bus namespace must set minimumTlsVersion: '1.2'"),
        ("http-allowed", "CKV_BPSYNC_5", "httpsOnly: true"),
        ("law-local-auth", "CKV_BPSYNC_9", "features.disableLocalAuth: true"),
    ],
)
def test_a_broken_security_rule_fails_checkov_with_a_clear_message(
    checkov_reports: dict[str, dict[str, Any]], copy: str, check_id: str, words: str
):
    report = checkov_reports[copy]
    failed = failures_in(report)
    assert check_id in failed, f"{copy}: expected {check_id} to fail, failures: {failed}"
    assert words in failed[check_id]
    messages = checks.checkov_problems(report)
    assert any(m.startswith(f"{check_id} failed:") and words in m for m in messages)
    # only the broken rule (and checkov's own equivalents) fail; the rest of the copy is clean
    checkov_equivalents = {"CKV_AZURE_42", "CKV_AZURE_110", "CKV_AZURE_44", "CKV_AZURE_14", "CKV_AZURE_70",
                           "CKV_AZURE_153"}
    assert set(failed) <= {check_id} | checkov_equivalents


def test_a_bicep_syntax_error_is_a_checkov_parsing_error_and_a_pycep_failure(
    checkov_reports: dict[str, dict[str, Any]], tmp_path: Path
):
    problems = checks.checkov_problems(checkov_reports["syntax-error"])
    assert any(p.startswith("checkov could not parse") and "identity.bicep" in p for p in problems)
    infra = copy_infra(tmp_path / "infra")
    break_file(infra, *BREAKS["syntax-error"])
    problems = checks.check_bicep_syntax(infra)
    assert len(problems) == 1 and "modules/identity.bicep: not valid Bicep" in problems[0]


def test_module_wiring_errors_name_the_module_and_param(tmp_path: Path):
    infra = copy_infra(tmp_path / "infra")
    break_file(infra, "main.bicep", "    alertEmail: alertEmail\n", "    alertMail: alertEmail\n")
    url = "functionApp.outputs.defaultHostName}/api"
    break_file(infra, "main.bicep", url, url.replace("defaultHostName", "hostName"))
    problems = checks.check_module_wiring(infra)
    assert sorted(problems) == [
        "main.bicep: module alerts (modules/alerts.bicep): does not pass required param 'alertEmail'",
        "main.bicep: module alerts (modules/alerts.bicep): passes param 'alertMail', which the module "
        "does not declare",
        "main.bicep: reads functionApp.outputs.hostName, which the module does not output",
    ]


def test_a_topic_module_that_ignores_the_topology_fails(tmp_path: Path, topology: Topology):
    infra = copy_infra(tmp_path / "infra")
    module = "modules/servicebus-topic.bicep"
    break_file(infra, module, "lockDuration: sub.lockDuration", "lockDuration: 'PT5M'")
    problems = checks.check_bicep_uses_topology(infra, topology)
    assert problems == ["modules/servicebus-topic.bicep: must take sub.lockDuration from the topology"]


def test_a_skip_without_justification_is_rejected(tmp_path: Path):
    infra = copy_infra(tmp_path / "infra")
    unjustified = "  // checkov:skip=CKV_AZURE_3\n  kind: 'StorageV2'"
    break_file(infra, "modules/storage.bicep", "  kind: 'StorageV2'", unjustified)
    problems = checks.check_skip_justifications(infra)
    assert len(problems) == 1
    assert "storage.bicep" in problems[0] and "checkov:skip=CKV_AZURE_3 has no justification" in problems[0]


def test_bicepparam_errors_name_the_param(tmp_path: Path):
    infra = copy_infra(tmp_path / "infra")
    params = infra / "main.bicepparam"
    text = params.read_text(encoding="utf-8")
    text = text.replace("param serviceBusSku = 'Standard'", "param serviceBusSku = 'Basic'")
    text = text.replace("param brightpearlAppRef = 'mycompany_sync'\n", "param brightpearlAppReff = 'typo'\n")
    params.write_text(text, encoding="utf-8")
    problems = checks.check_bicepparam(infra)
    assert any("'serviceBusSku' = 'Basic' is not one of the allowed values" in p for p in problems)
    assert any("sets param 'brightpearlAppReff', which main.bicep does not declare" in p for p in problems)
    assert any("required param 'brightpearlAppRef' of main.bicep is not set" in p for p in problems)


# --- triggers vs topology ------------------------------------------------------------------


def app_with_triggers(*pairs: tuple[str, str]) -> func.FunctionApp:
    """A FunctionApp whose topic triggers read the given (topic setting or name, subscription)."""
    app = func.FunctionApp()
    for index, (topic, subscription) in enumerate(pairs):
        def handler(messages: list[func.ServiceBusMessage]) -> None:  # pragma: no cover - never run
            return None

        handler.__name__ = f"flow_{index}"
        app.function_name(f"flow_{index}")(
            app.service_bus_topic_trigger(
                arg_name="messages", topic_name=topic, subscription_name=subscription,
                connection="ServiceBusConnection", cardinality="many",
            )(handler)
        )
    return app


def topology_pairs(topology: Topology) -> list[tuple[str, str]]:
    return [(f"%{t.setting}%", s.name) for t in topology.topics for s in t.subscriptions]


def test_triggers_matching_the_topology_pass(topology: Topology, local_values: dict[str, str]):
    app = app_with_triggers(*topology_pairs(topology))
    bicep = checks.bicep_app_settings(checks.INFRA_DIR).names()
    assert checks.check_triggers_match_topology(app, topology, local_values, bicep) == []


def test_a_trigger_on_a_subscription_missing_from_the_topology_fails(
    topology: Topology, local_values: dict[str, str]
):
    pairs = [*topology_pairs(topology), ("%BRIGHTPEARL_CHANGES_TOPIC%", "orders-to-nowhere")]
    app = app_with_triggers(*pairs)
    bicep = checks.bicep_app_settings(checks.INFRA_DIR).names()
    problems = checks.check_triggers_match_topology(app, topology, local_values, bicep)
    assert len(problems) == 1
    expected = "subscription brightpearl-changes/orders-to-nowhere, which infra/topology.json does not define"
    assert expected in problems[0]


def test_a_topology_subscription_without_a_trigger_fails(
    tmp_path: Path, topology: Topology, local_values: dict[str, str]
):
    raw = json.loads((checks.INFRA_DIR / "topology.json").read_text(encoding="utf-8"))
    extra = dict(raw["topics"][0]["subscriptions"][0], name="refunds-to-nowhere")
    extra["rule"] = {"name": "$Default", "sqlFilter": "entity = 'refund' AND (replay_to IS NULL OR "
                                                      "replay_to = 'refunds-to-nowhere')"}
    raw["topics"][0]["subscriptions"].append(extra)
    (tmp_path / "topology.json").write_text(json.dumps(raw), encoding="utf-8")
    grown = load_topology(tmp_path / "topology.json")
    app = app_with_triggers(*topology_pairs(topology))
    bicep = checks.bicep_app_settings(checks.INFRA_DIR).names()
    problems = checks.check_triggers_match_topology(app, grown, local_values, bicep)
    topic = raw["topics"][0]["name"]
    assert problems == [
        f"subscription {topic}/refunds-to-nowhere in infra/topology.json has no Service Bus trigger in "
        f"function_app: its messages would pile up and dead-letter; add the flow or remove it"
    ]


def test_a_topic_setting_that_bicep_does_not_set_fails(topology: Topology, local_values: dict[str, str]):
    app = app_with_triggers(*topology_pairs(topology))
    setting = topology.topics[0].setting
    bicep = checks.bicep_app_settings(checks.INFRA_DIR).names() - {setting}
    problems = checks.check_triggers_match_topology(app, topology, local_values, bicep)
    assert any(f"topic setting {setting} is not set by the Bicep app settings" in p for p in problems)


def test_a_subscription_rule_without_replay_to_fails(tmp_path: Path):
    raw = json.loads((checks.INFRA_DIR / "topology.json").read_text(encoding="utf-8"))
    sub = raw["topics"][0]["subscriptions"][0]
    sub["rule"]["sqlFilter"] = "entity IN ('contact')"
    sub["deadLetteringOnMessageExpiration"] = False
    (tmp_path / "topology.json").write_text(json.dumps(raw), encoding="utf-8")
    problems = checks.check_topology_rules(load_topology(tmp_path / "topology.json"))
    where = f"subscription {raw['topics'][0]['name']}/{sub['name']}"
    assert f"{where}: deadLetteringOnMessageExpiration must be true" in problems
    expected = f"{where}: rule must accept copies with replay_to = '{sub['name']}'"
    assert any(p.startswith(expected) for p in problems)


# --- settings ------------------------------------------------------------------------------


class _NewFeatureSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)
    batch_size: int = Field(50, validation_alias="ORDERS_BATCH_SIZE")
    api_secret: str | None = Field(None, validation_alias="ORDERS_API_SECRET")


def test_a_new_setting_missing_from_bicep_and_local_example_fails(code_settings: dict[str, Any]):
    grown = {**code_settings, **checks.code_settings({"orders": _NewFeatureSettings})}
    problems = checks.check_settings_in_bicep(checks.INFRA_DIR, grown)
    assert any(p.startswith("ORDERS_BATCH_SIZE (orders.batch_size) is read by the code but not set by "
                            "infra/modules/functionapp.bicep") for p in problems)
    assert any(p.startswith("ORDERS_API_SECRET (orders.api_secret)") for p in problems)
    local = checks.check_settings_in_local_example(grown, {k: "" for k in code_settings})
    assert local == [
        "ORDERS_API_SECRET (orders.api_secret) is read by the code but missing from "
        "local.settings.example.json",
        "ORDERS_BATCH_SIZE (orders.batch_size) is read by the code but missing from "
        "local.settings.example.json",
    ]


def test_a_secret_set_as_plain_text_and_an_unread_setting_fail(
    tmp_path: Path, code_settings: dict[str, Any]
):
    infra = copy_infra(tmp_path / "infra")
    module = "modules/functionapp.bicep"
    secret_line = (
        "BRIGHTPEARL_WEBHOOK_SECRET: '@Microsoft.KeyVault(VaultName=${keyVaultName};"
        "SecretName=${secretNames.brightpearlWebhookSecret})'"
    )
    break_file(infra, module, secret_line, "BRIGHTPEARL_WEBHOOK_SECRET: 'plain-text-secret'")
    typo = "  BUS_BACKEND: 'servicebus'\n  BUS_BAKEND: 'typo'"
    break_file(infra, module, "  BUS_BACKEND: 'servicebus'", typo)
    break_file(infra, module, "  DATAVERSE_URL: dataverseUrl\n", "")
    problems = checks.check_settings_in_bicep(infra, code_settings)
    assert (
        "BRIGHTPEARL_WEBHOOK_SECRET is a secret but infra/modules/functionapp.bicep sets it to "
        "'plain-text-secret'; use '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=...)'"
    ) in problems
    assert any(p.startswith("BUS_BAKEND is set by infra/modules/functionapp.bicep but read by nothing")
               for p in problems)
    missing = "DATAVERSE_URL (dataverse.url) is read by the code but not set"
    assert any(p.startswith(missing) for p in problems)


def test_a_tunable_the_code_rejects_fails(tmp_path: Path, local_values: dict[str, str]):
    infra = copy_infra(tmp_path / "infra")
    path = infra / "app-settings.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["RETRY_MAX_ATTEMPTS"] = "0"
    path.write_text(json.dumps(data), encoding="utf-8")
    problems = checks.check_tunables_valid(infra, local_values)
    assert len(problems) == 1
    assert "RETRY_MAX_ATTEMPTS" in problems[0] and "greater than or equal to 1" in problems[0]
