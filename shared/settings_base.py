"""What every settings section shares: how an app setting's name follows from a field's name.

A field `max_attempts` of a section with prefix `RETRY_` reads the app setting
`RETRY_MAX_ATTEMPTS`; a field whose setting is named otherwise (Azure's own names such as
`AzureWebJobsStorage`, or a name shared across sections) says so with `validation_alias`.
"""

from __future__ import annotations

from pydantic import AliasGenerator
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
