"""The user-assigned managed identity of each identity-based connection is read from its own
app setting (Azure's `<connection>__clientId`, or DATAVERSE_MANAGED_IDENTITY_CLIENT_ID)."""

from shared.settings import load_settings

BASE = {
    "BUS_BACKEND": "local",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "BRIGHTPEARL_ACCOUNT": "acme",
    "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
}


def test_each_connection_reads_its_own_identity_client_id():
    settings = load_settings(
        BASE
        | {
            "ServiceBusConnection__clientId": "bus-identity",
            "AzureWebJobsStorage__clientId": "storage-identity",
            "DATAVERSE_MANAGED_IDENTITY_CLIENT_ID": "dataverse-identity",
        }
    )
    assert settings.bus.managed_identity_client_id == "bus-identity"
    assert settings.store.managed_identity_client_id == "storage-identity"
    assert settings.dataverse.managed_identity_client_id == "dataverse-identity"


def test_identity_client_ids_are_unset_by_default():
    settings = load_settings(BASE)
    assert settings.bus.managed_identity_client_id is None
    assert settings.store.managed_identity_client_id is None
    assert settings.dataverse.managed_identity_client_id is None
