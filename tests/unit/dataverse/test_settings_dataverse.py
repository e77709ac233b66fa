"""DataverseSettings: new fields, defaults and the credential combinations."""

from __future__ import annotations

import pytest
from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential
from pydantic import ValidationError

from shared.dataverse.credentials import SandboxCredential, build_credential
from shared.dataverse.settings import DataverseSettings

URL = {"DATAVERSE_URL": "https://contoso.crm4.dynamics.com"}


def test_defaults():
    s = DataverseSettings.model_validate(URL)
    assert (s.max_concurrency, s.bulk_batch_size, s.batch_size, s.page_size) == (52, 1000, 100, 5000)
    assert s.service_root == "https://contoso.crm4.dynamics.com/api/data/v9.2/"
    assert s.scope == "https://contoso.crm4.dynamics.com/.default"
    assert isinstance(build_credential(s), DefaultAzureCredential)


def test_client_secret_and_managed_identity_credentials():
    s = DataverseSettings.model_validate(
        {**URL, "DATAVERSE_TENANT_ID": "t", "DATAVERSE_CLIENT_ID": "c", "DATAVERSE_CLIENT_SECRET": "x"}
    )
    assert isinstance(build_credential(s), ClientSecretCredential)
    mi = DataverseSettings.model_validate({**URL, "DATAVERSE_USE_MANAGED_IDENTITY": "true"})
    assert isinstance(build_credential(mi), ManagedIdentityCredential)
    sandbox = DataverseSettings.model_validate(
        {
            "DATAVERSE_URL": "http://127.0.0.1:8102",
            "DATAVERSE_TOKEN_URL": "http://127.0.0.1:8102/t/oauth2/v2.0/token",
            "DATAVERSE_CLIENT_ID": "c",
            "DATAVERSE_CLIENT_SECRET": "x",
        }
    )
    assert isinstance(build_credential(sandbox), SandboxCredential)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"DATAVERSE_CLIENT_SECRET": "x"}, "DATAVERSE_CLIENT_ID"),
        ({"DATAVERSE_TOKEN_URL": "http://127.0.0.1/t/oauth2/v2.0/token"}, "DATAVERSE_TOKEN_URL"),
        (
            {
                "DATAVERSE_USE_MANAGED_IDENTITY": "true",
                "DATAVERSE_TENANT_ID": "t",
                "DATAVERSE_CLIENT_ID": "c",
                "DATAVERSE_CLIENT_SECRET": "x",
            },
            "not both",
        ),
        ({"DATAVERSE_MAX_CONCURRENCY": "53"}, "less than or equal to 52"),
        ({"DATAVERSE_BATCH_SIZE": "1001"}, "1000"),
        ({"DATAVERSE_ORGANIZATION_ID": "org"}, "pattern"),
    ],
)
def test_invalid_combinations_name_the_setting(extra, fragment):
    with pytest.raises(ValidationError) as exc:
        DataverseSettings.model_validate({**URL, **extra})
    assert fragment in str(exc.value)
