"""Brightpearl settings: defaults, validation messages naming the app setting, derived URLs."""

from __future__ import annotations

import pytest

from shared.brightpearl.settings import BrightpearlSettings
from shared.settings import SettingsError, load_settings

BASE = {"BRIGHTPEARL_ACCOUNT": "acme"}


def test_defaults_match_brightpearls_published_limits():
    settings = BrightpearlSettings.model_validate(BASE)
    assert (
        settings.rate_limit,
        settings.rate_window_seconds,
        settings.idset_chunk_size,
        settings.search_page_size,
    ) == (200, 60.0, 200, 500)
    assert settings.api_root == "https://euw1.brightpearlconnect.com"
    assert settings.token_url == "https://euw1.brightpearlconnect.com/acme/oauth/token"


def test_base_url_overrides_the_datacentre():
    settings = BrightpearlSettings.model_validate(
        {**BASE, "BRIGHTPEARL_BASE_URL": "http://127.0.0.1:8101/", "BRIGHTPEARL_DATACENTRE": "use1"}
    )
    assert settings.api_root == "http://127.0.0.1:8101"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BRIGHTPEARL_APP_REF": "app"}, "BRIGHTPEARL_ACCOUNT_TOKEN"),
        ({"BRIGHTPEARL_AUTH_MODE": "oauth", "BRIGHTPEARL_APP_REF": "app"}, "BRIGHTPEARL_DEV_REF"),
        (
            {
                "BRIGHTPEARL_AUTH_MODE": "oauth",
                "BRIGHTPEARL_APP_REF": "app",
                "BRIGHTPEARL_DEV_REF": "d",
                "BRIGHTPEARL_TOKEN_STORE": "keyvault",
            },
            "BRIGHTPEARL_KEY_VAULT_URL",
        ),
        ({"BRIGHTPEARL_RATE_LIMIT": "0"}, "BRIGHTPEARL_RATE_LIMIT"),
        ({"BRIGHTPEARL_IDSET_CHUNK_SIZE": "900"}, "BRIGHTPEARL_IDSET_CHUNK_SIZE"),
        ({"BRIGHTPEARL_AUTH_MODE": "magic"}, "BRIGHTPEARL_AUTH_MODE"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], named: str):
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                **BASE,
                "DATAVERSE_URL": "https://x.crm.dynamics.com",
                "BUS_BACKEND": "local",
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                **env,
            }
        )
    assert named in str(caught.value)


def test_secrets_are_not_echoed():
    # An empty value counts as unset: the token is reported missing, by name.
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                **BASE,
                "DATAVERSE_URL": "https://x.crm.dynamics.com",
                "BUS_BACKEND": "local",
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "BRIGHTPEARL_APP_REF": "a",
                "BRIGHTPEARL_ACCOUNT_TOKEN": "",
            }
        )
    assert "BRIGHTPEARL_ACCOUNT_TOKEN" in str(caught.value)
    # A token that is given is never echoed when something else is wrong.
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                **BASE,
                "DATAVERSE_URL": "https://x.crm.dynamics.com",
                "BUS_BACKEND": "local",
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "BRIGHTPEARL_AUTH_MODE": "oauth",
                "BRIGHTPEARL_APP_REF": "a",
                "BRIGHTPEARL_OAUTH_CLIENT_SECRET": "very-secret-client-value",
                "BRIGHTPEARL_OAUTH_TOKEN_URL": "not a url",
            }
        )
    assert "BRIGHTPEARL_OAUTH_TOKEN_URL" in str(caught.value)
    assert "very-secret-client-value" not in str(caught.value)
