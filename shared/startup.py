"""Start-up of the function app: validate every setting, then configure telemetry."""

from __future__ import annotations

from shared.settings import get_settings
from shared.telemetry import configure_telemetry


def start() -> None:
    """Raise SettingsError naming every missing or invalid setting; set up logging/exporters."""
    settings = get_settings()
    configure_telemetry(
        connection_string=settings.telemetry.appinsights_connection_string,
        log_level=settings.telemetry.log_level,
        service_name=settings.telemetry.service_name,
    )
