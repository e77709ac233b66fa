"""Brightpearl connection settings (app settings BRIGHTPEARL_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BrightpearlSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    account: str = Field(
        validation_alias="BRIGHTPEARL_ACCOUNT",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Brightpearl account code; webhooks from any other account are rejected",
    )
