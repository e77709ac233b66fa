"""What every settings section shares: how an app setting's name follows from a field's name.

A field `max_attempts` of a section with prefix `RETRY_` reads the app setting
`RETRY_MAX_ATTEMPTS`; a field whose setting is named otherwise (Azure's own names such as
`AzureWebJobsStorage`, or a name shared across sections) says so with `validation_alias`.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasGenerator, Field
from pydantic_settings import SettingsConfigDict


def section_config(prefix: str) -> SettingsConfigDict:
    """Config of a settings section whose fields read the app settings `prefix` + NAME."""

    def setting_name(field: str) -> str:
        return prefix + field.upper()

    return SettingsConfigDict(
        extra="ignore",
        populate_by_name=False,
        case_sensitive=True,
        alias_generator=AliasGenerator(validation_alias=setting_name),
    )


def identity_client_id(connection: str | None = None) -> Any:
    """Field of the client id of a user-assigned managed identity: Azure's own
    `<connection>__clientId` setting of an identity-based connection (ServiceBusConnection,
    AzureWebJobsStorage), or the section's `<prefix>MANAGED_IDENTITY_CLIENT_ID` without one."""
    return Field(
        None,
        validation_alias=f"{connection}__clientId" if connection else None,
        description="client id of a user-assigned managed identity, if one is used",
    )
