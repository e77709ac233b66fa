"""Dataverse connection settings (app settings DATAVERSE_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DataverseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    url: str = Field(
        validation_alias="DATAVERSE_URL",
        pattern=r"^https?://[^/\s]+/?$",
        description="environment URL, e.g. https://contoso.crm.dynamics.com",
    )
