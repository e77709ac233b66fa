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
