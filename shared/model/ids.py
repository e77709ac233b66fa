"""A record's ids in each system: the one shape every canonical entity carries as `ids`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SystemIds(BaseModel):
    """A record's ids in each system, when known; each entity names which ids in its subclass."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    brightpearl: str | None = Field(None, description="the Brightpearl id (contactId, product id, ...)")
    dataverse: str | None = Field(None, description="the Dataverse row id (GUID)")
