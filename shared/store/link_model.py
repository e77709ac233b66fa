"""The link records of the state store: a record's cross-reference between two systems and a
worker's creation claim (stored by shared.store.links; carried by shared.store.errors.ClaimTaken).

Plain data with no store behaviour, so the errors module can name them without importing the
store (no import cycle between shared.store.errors and shared.store.links).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class LinkState(StrEnum):
    PENDING = "pending"
    LINKED = "linked"


class LinkSide(BaseModel):
    """One system's view of a link: its record id and what was last synced there."""

    model_config = ConfigDict(frozen=True)

    system: str
    id: str | None  # None only for the target of a pending claim
    content_hash: str | None = None
    synced_at: datetime | None = None


class Link(BaseModel):
    """The cross-reference of one record between two systems (read from the origin row)."""

    model_config = ConfigDict(frozen=True)

    entity: str
    state: LinkState
    source: LinkSide  # the side the link was created from
    target: LinkSide
    created_at: datetime
    updated_at: datetime
    claimed_at: datetime | None = None
    claim_owner: str | None = None  # pending only: who holds the creation claim
    lease_until: datetime | None = None  # pending only: when the claim may be taken over
    etag: str  # ETag of the origin row: pass it back for conditional updates

    @property
    def is_linked(self) -> bool:
        return self.state is LinkState.LINKED

    def side(self, system: str) -> LinkSide:
        if system == self.source.system:
            return self.source
        if system == self.target.system:
            return self.target
        raise ValueError(
            f"system {system!r} is not part of this {self.entity} link "
            f"({self.source.system} ⇄ {self.target.system})"
        )

    def other(self, system: str) -> LinkSide:
        return self.target if self.side(system) is self.source else self.source

    def id_in(self, system: str) -> str | None:
        return self.side(system).id

    def hash_of(self, system: str) -> str | None:
        return self.side(system).content_hash


class Claim(BaseModel):
    """A creation claim held by this worker: proof that it may create the target record."""

    model_config = ConfigDict(frozen=True)

    entity: str
    source_system: str
    source_id: str
    target_system: str
    token: str
    claimed_at: datetime
    created_at: datetime  # of the first claim on this record (kept when a stale one is taken over)
    etag: str
    owner: str = ""
    lease_until: datetime | None = None
    # True when taken over from a holder whose lease ran out: it may have created the record
    # before it died, so look for it before creating (a resumed released claim is False).
    takeover: bool = False
    progress: dict[str, Any] = {}  # what the holders created so far on the way to the record
