"""Bicep, infra/topology.json, the function app's triggers and the settings stay in step."""

from __future__ import annotations

from typing import Any

from shared.bus.topology import Topology
from tests.infra import infra_checks as checks


def test_topology_keeps_dead_lettering_duplicate_detection_and_replay_rules(topology: Topology):
    assert checks.check_topology_rules(topology) == []


def test_bicep_builds_service_bus_entities_from_the_topology(topology: Topology):
    assert checks.check_bicep_uses_topology(checks.INFRA_DIR, topology) == []


def test_every_setting_the_code_reads_is_set_by_bicep(code_settings: dict[str, checks.CodeSetting]):
    assert checks.check_settings_in_bicep(checks.INFRA_DIR, code_settings) == []


def test_every_setting_a_binding_references_is_set_by_bicep(function_app: Any):
    references = checks.binding_setting_references(function_app)
    names = checks.bicep_app_settings(checks.INFRA_DIR).names()
    assert sorted(references - names) == []


def test_every_secret_setting_is_a_key_vault_reference(code_settings: dict[str, checks.CodeSetting]):
    bicep = checks.bicep_app_settings(checks.INFRA_DIR)
    secrets = [name for name, s in code_settings.items() if s.secret and name not in checks.NOT_SET_IN_AZURE]
    assert {"BRIGHTPEARL_WEBHOOK_SECRET", "DATAVERSE_WEBHOOK_SECRET"} <= set(secrets)
    for name in secrets:
        for value in bicep.values[name]:
            assert value.startswith("@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName="), name


def test_tunables_in_app_settings_json_pass_the_code_validation(local_values: dict[str, str]):
    assert checks.check_tunables_valid(checks.INFRA_DIR, local_values) == []


def test_every_setting_the_code_reads_is_in_local_settings_example(
    code_settings: dict[str, checks.CodeSetting], local_values: dict[str, str]
):
    assert checks.check_settings_in_local_example(code_settings, local_values) == []


def test_every_setting_a_binding_references_is_in_local_settings_example(
    function_app: Any, local_values: dict[str, str]
):
    references = checks.binding_setting_references(function_app)
    assert checks.check_settings_in_local_example({}, local_values, references) == []


def test_every_service_bus_trigger_matches_the_topology_and_vice_versa(
    function_app: Any, topology: Topology, local_values: dict[str, str]
):
    bicep_names = checks.bicep_app_settings(checks.INFRA_DIR).names()
    assert checks.check_triggers_match_topology(function_app, topology, local_values, bicep_names) == []


def test_every_flow_spec_has_its_subscription_taking_exactly_its_entities(topology: Topology):
    """shared/sync/registry.py (the entity specs) and infra/topology.json agree: each flow's
    subscription is on its source's topic and its rule takes the notice entities it consumes."""
    from shared.bus.sqlfilter import compile_filter
    from shared.sync.registry import flows

    candidates = {"contact", "account", "product", "order", "goods-out-note", "salesorder", "invoice"}
    candidates |= {e for flow in flows() for e in flow.source_entities}  # e.g. product-stock
    for flow in flows():
        [topic] = [t for t in topology.topics if t.setting == flow.topic_setting]
        subs = [s for s in topic.subscriptions if s.name == flow.name]
        assert subs, f"flow {flow.name}: no subscription {topic.name}/{flow.name} in infra/topology.json"
        rule = compile_filter(subs[0].rule.sql_filter)
        taken = {
            e
            for e in candidates
            if rule.matches({"entity": e, "operation": "updated", "source_system": flow.source}, {})
        }
        assert taken == set(flow.source_entities), f"{topic.name}/{flow.name} takes {sorted(taken)}"


def test_every_spec_trigger_is_registered_with_its_settings(function_app: Any, local_values: dict[str, str]):
    """Each flow and poller of the specs is a function of the app; each poller's schedule
    setting is in local.settings.example.json (and so checked against Bicep above)."""
    from shared.sync.registry import flows, pollers

    bindings = {
        name: binding
        for name, binding in checks.function_bindings(function_app)
        if str(binding.get("type", "")).endswith("Trigger")
    }
    for flow in flows():
        assert flow.function_name in bindings, f"flow {flow.name} has no trigger {flow.function_name}"
        assert bindings[flow.function_name].get("subscriptionName") == flow.name
    for poller in pollers():
        assert poller.function_name in bindings, f"poller {poller.function_name} is not registered"
        assert bindings[poller.function_name].get("schedule") == f"%{poller.schedule_setting}%"
        assert poller.schedule_setting in local_values
