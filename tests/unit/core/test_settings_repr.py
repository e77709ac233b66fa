"""Printing the loaded settings never shows a secret (AppSettings keeps the plain object repr)."""

from shared.settings import load_settings


def test_repr_of_the_settings_shows_no_secret():
    settings = load_settings(
        {
            "BUS_BACKEND": "servicebus",
            "ServiceBusConnection": "Endpoint=sb://bus/;SharedAccessKey=bus-secret-value",
            "AzureWebJobsStorage": "AccountName=a;AccountKey=storage-secret-value",
            "BRIGHTPEARL_ACCOUNT": "acme",
            "BRIGHTPEARL_APP_REF": "acme-app",
            "BRIGHTPEARL_ACCOUNT_TOKEN": "brightpearl-secret-value",
            "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
        }
    )
    shown = f"{settings!r} {settings}"
    for secret in ("bus-secret-value", "storage-secret-value", "brightpearl-secret-value"):
        assert secret not in shown
