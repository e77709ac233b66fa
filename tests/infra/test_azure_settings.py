"""The app settings Bicep produces pass the code's own start-up validation in every auth mode,
i.e. the deployed function app would start (Key Vault references taken as resolved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.settings import SettingsError, load_settings
from tests.infra import infra_checks as checks
from tests.infra.copies import break_file, copy_infra

MI_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
MAIN = checks.parse_bicep(checks.INFRA_DIR / "main.bicep")


def module_params(brightpearl_mode: str, dataverse_mode: str) -> dict[str, Any]:
    """Values main.bicep would pass to modules/functionapp.bicep (outputs replaced by samples)."""
    return {
        "name": "func-bpsync-abc", "planName": "plan-bpsync-abc", "location": "westeurope", "tags": {},
        "pythonVersion": "3.13", "instanceMemoryMB": 2048, "maximumInstanceCount": 100,
        "allowBasicPublishingCredentials": False,
        "identityId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
                      "userAssignedIdentities/id-bpsync-abc",
        "identityClientId": MI_CLIENT_ID,
        "storageAccountName": "stbpsyncabc",
        "deploymentContainerUrl": "https://stbpsyncabc.blob.core.windows.net/app-package",
        "serviceBusNamespaceName": "sb-bpsync-abc",
        "keyVaultName": "kv-bpsync-abc",
        "keyVaultUri": "https://kv-bpsync-abc.vault.azure.net/",
        "secretNames": MAIN["variables"]["secretNames"]["value"],
        "appInsightsConnectionString": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
        "brightpearlChangesTopic": "brightpearl-changes",
        "dataverseChangesTopic": "dataverse-changes",
        "brightpearlAccount": "contoso",
        "brightpearlDatacentre": "euw1",
        "brightpearlAuthMode": brightpearl_mode,
        "brightpearlAppRef": "contoso_sync",
        "brightpearlDevRef": "contosodev" if brightpearl_mode == "oauth" else "",
        "brightpearlOAuthClientId": "",
        "brightpearlOAuthTokenUrl": "",
        "dataverseUrl": "https://contoso.crm.dynamics.com",
        "dataverseAuthMode": dataverse_mode,
        "dataverseTenantId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "dataverseClientId": "aaaaaaaa-bbbb-cccc-dddd-ffffffffffff" if dataverse_mode == "secret" else "",
        "dataverseOrganizationId": "",
        "dataverseIntegrationUserId": "",
        "stateTablePrefix": "",
        "additionalAppSettings": {},
    }


def test_the_sample_covers_every_param_main_passes():
    passed = set(MAIN["modules"]["functionApp"]["config"]["params"])
    assert set(module_params("private", "managedIdentity")) == passed


@pytest.mark.parametrize("brightpearl_mode", ["private", "oauth"])
@pytest.mark.parametrize("dataverse_mode", ["managedIdentity", "secret"])
def test_bicep_app_settings_pass_start_up_validation(brightpearl_mode: str, dataverse_mode: str):
    env = checks.azure_app_settings(checks.INFRA_DIR, module_params(brightpearl_mode, dataverse_mode))
    settings = load_settings(env)
    assert settings.bus.backend == "servicebus"
    assert settings.bus.fully_qualified_namespace == "sb-bpsync-abc.servicebus.windows.net"
    assert settings.bus.connection_string is None and settings.store.connection_string is None
    assert settings.bus.managed_identity_client_id == MI_CLIENT_ID
    assert settings.store.table_endpoint == "https://stbpsyncabc.table.core.windows.net"
    assert settings.brightpearl.auth_mode == brightpearl_mode
    if brightpearl_mode == "oauth":
        assert settings.brightpearl.token_store == "keyvault"
        assert settings.brightpearl.key_vault_url == "https://kv-bpsync-abc.vault.azure.net/"
        assert settings.brightpearl.account_token is None
    else:
        assert settings.brightpearl.account_token == checks.RESOLVED_SECRET
    assert settings.dataverse.use_managed_identity is (dataverse_mode == "managedIdentity")
    if dataverse_mode == "secret":
        assert settings.dataverse.client_secret == checks.RESOLVED_SECRET
    else:
        assert settings.dataverse.managed_identity_client_id == MI_CLIENT_ID
        assert settings.dataverse.client_secret is None
    assert settings.webhooks.brightpearl_secret == checks.RESOLVED_SECRET


def test_bicep_that_drops_a_needed_setting_fails_start_up_validation(tmp_path: Path):
    infra = copy_infra(tmp_path / "infra")
    break_file(infra, "modules/functionapp.bicep", "  BRIGHTPEARL_APP_REF: brightpearlAppRef\n", "")
    env = checks.azure_app_settings(infra, module_params("private", "managedIdentity"))
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert any("BRIGHTPEARL_APP_REF" in problem for problem in info.value.problems)
