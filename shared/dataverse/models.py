"""Typed results of the Dataverse client: records, pages, batch and bulk outcomes, changes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.dataverse.errors import DataverseError


@dataclass(frozen=True)
class Record:
    """One row as the Web API returned it (`values` without the @odata annotations)."""

    entity_set: str
    id: str | None
    etag: str | None
    values: Mapping[str, Any]
    annotations: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def lookup(self, column: str) -> str | None:
        """The GUID a lookup column points at (`_<column>_value`)."""
        value = self.values.get(f"_{column}_value")
        return str(value) if value is not None else None

    def formatted(self, name: str) -> str | None:
        value = self.annotations.get(f"{name}@OData.Community.Display.V1.FormattedValue")
        return str(value) if value is not None else None

    @classmethod
    def from_json(cls, entity_set: str, payload: Mapping[str, Any], primary_id: str | None = None) -> Record:
        values = {k: v for k, v in payload.items() if "@" not in k}
        annotations = {k: v for k, v in payload.items() if "@" in k and not k.startswith("@odata.")}
        record_id = values.get(primary_id) if primary_id else None
        return cls(
            entity_set, str(record_id) if record_id else None, payload.get("@odata.etag"), values, annotations
        )


@dataclass(frozen=True)
class Page:
    records: list[Record]
    next_link: str | None = None
    delta_link: str | None = None
    count: int | None = None

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)


@dataclass(frozen=True)
class WhoAmI:
    user_id: str
    business_unit_id: str
    organization_id: str


@dataclass(frozen=True)
class UpsertResult:
    id: str | None
    created: bool | None  # None when the service did not say (204 without representation)


@dataclass
class BatchOperation:
    """One request inside a `$batch`: path relative to the service root, e.g. `contacts(<id>)`."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class BatchResult:
    index: int
    status: int
    headers: dict[str, str]
    body: Any
    error: DataverseError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status < 400

    @property
    def entity_id(self) -> str | None:
        from shared.dataverse.odata import entity_id_from_url

        url = self.headers.get("odata-entityid") or self.headers.get("location")
        return entity_id_from_url(url) if url else None


@dataclass
class RowOutcome:
    """What happened to one row of a bulk write."""

    index: int
    key: Mapping[str, Any] | None
    ok: bool
    id: str | None = None
    error: DataverseError | None = None
    via: str = "bulk"  # bulk | batch


@dataclass
class BulkResult:
    outcomes: list[RowOutcome]
    bulk_requests: int = 0
    batch_requests: int = 0
    fallbacks: int = 0

    @property
    def succeeded(self) -> list[RowOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[RowOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def requests(self) -> int:
        return self.bulk_requests + self.batch_requests


@dataclass
class ChangeSet:
    """The result of one change-tracking read: changed rows, deleted ids, the next delta link."""

    entity_set: str
    upserts: list[Record]
    deleted_ids: list[str]
    delta_link: str
    full_sync: bool  # True for an initial load or after an expired token
    reason: str | None = None
