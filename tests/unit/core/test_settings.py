"""Settings fail at start-up naming each missing or invalid setting, without echoing secrets."""

import json
from pathlib import Path

import pytest

from shared.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]


def test_the_example_settings_are_complete_and_valid():
    settings = load_settings(dict(EXAMPLE))
    assert settings.bus.backend == "local"
    assert settings.store.connection_string
    assert settings.retry.max_attempts >= 1


def test_missing_settings_are_named():
    with pytest.raises(SettingsError) as info:
        load_settings({})
    text = str(info.value)
    assert "ServiceBusConnection" in text
    assert "AzureWebJobsStorage" in text
    assert "BRIGHTPEARL_ACCOUNT" in text


def test_invalid_values_name_the_setting_and_hide_secrets():
    env = dict(EXAMPLE)
    env["RETRY_MAX_ATTEMPTS"] = "zero"
    env["BRIGHTPEARL_WEBHOOK_SECRET"] = "short"
    env["BUS_BACKEND"] = "carrier-pigeon"
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    problems = info.value.problems
    assert any(p.startswith("RETRY_MAX_ATTEMPTS:") and "zero" in p for p in problems)
    assert any(p.startswith("BUS_BACKEND:") for p in problems)
    secret_problem = next(p for p in problems if p.startswith("BRIGHTPEARL_WEBHOOK_SECRET:"))
    assert "short" not in secret_problem and "***" in secret_problem


def test_identity_based_service_bus_is_enough():
    env = dict(EXAMPLE)
    env["BUS_BACKEND"] = "servicebus"
    env["ServiceBusConnection__fullyQualifiedNamespace"] = "contoso.servicebus.windows.net"
    assert load_settings(env).bus.fully_qualified_namespace == "contoso.servicebus.windows.net"


def test_retry_cap_below_base_is_rejected():
    env = dict(EXAMPLE, RETRY_BASE_DELAY_SECONDS="60", RETRY_MAX_DELAY_SECONDS="30")
    with pytest.raises(SettingsError, match="RETRY_MAX_DELAY_SECONDS"):
        load_settings(env)


def test_an_explicit_environment_is_not_mixed_with_the_process_one(monkeypatch):
    monkeypatch.setenv("RETRY_MAX_ATTEMPTS", "not-a-number")
    assert load_settings(dict(EXAMPLE)).retry.max_attempts == int(EXAMPLE["RETRY_MAX_ATTEMPTS"])


def test_empty_values_count_as_unset():
    env = dict(EXAMPLE, BRIGHTPEARL_KEY_VAULT_URL="", RETRY_MAX_ATTEMPTS="")
    assert load_settings(env).retry.max_attempts == 8  # the default
    with pytest.raises(SettingsError, match="BRIGHTPEARL_ACCOUNT"):
        load_settings(dict(EXAMPLE, BRIGHTPEARL_ACCOUNT=""))


def test_an_unresolved_key_vault_reference_is_named():
    env = dict(EXAMPLE, BRIGHTPEARL_WEBHOOK_SECRET="@Microsoft.KeyVault(VaultName=kv;SecretName=bp-webhook)")
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    [problem] = [p for p in info.value.problems if p.startswith("BRIGHTPEARL_WEBHOOK_SECRET")]
    assert "Key Vault reference was not resolved" in problem and "SecretName" not in problem


def test_a_section_reads_prefix_plus_field_name_unless_the_field_names_its_setting():
    values = {
        **EXAMPLE,
        "RETRY_MAX_ATTEMPTS": "3",  # RetrySettings: prefix RETRY_ + max_attempts
        "BRIGHTPEARL_RATE_RESERVE": "7",  # BrightpearlSettings: prefix BRIGHTPEARL_
        "DATAVERSE_PAGE_SIZE": "250",  # DataverseSettings: prefix DATAVERSE_
        "CUSTOMER_MAPPING_PATH": "mappings/customers.yaml",  # named explicitly (no S after CUSTOMER)
        "STATE_TABLE_PREFIX": "t1",  # StoreSettings: explicit name
        "MAX_ATTEMPTS": "99",  # not a setting of any section
    }
    settings = load_settings(values)
    assert settings.retry.max_attempts == 3
    assert settings.brightpearl.rate_reserve == 7
    assert settings.dataverse.page_size == 250
    assert settings.customers.mapping_path == "mappings/customers.yaml"
    assert settings.store.table_prefix == "t1"
    with pytest.raises(SettingsError, match="RETRY_MAX_ATTEMPTS"):
        load_settings({**values, "RETRY_MAX_ATTEMPTS": "0"})
