"""Change-tracking reader: delta links per table, persisted through the cursors store.

First read: `GET <set>?$select=...` with `Prefer: odata.track-changes` (a full load), then each
read follows the saved `@odata.deltaLink` and returns new/updated rows and `$deletedEntity`
ids (reference §6). The cursor advances only when the caller says the changes were handled
(`advance`), so a crash between reading and publishing re-reads the same changes. An expired
delta token ("Version stamp ... has expired") restarts with a full sync, flagged in the result.
Links (saved delta link, nextLink, deltaLink) are followed only under the client's service
root; one to another host raises DataverseForeignLink and is never saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from shared.dataverse import odata
from shared.dataverse.errors import DataverseDeltaTokenExpired, DataverseError, DataverseForeignLink
from shared.dataverse.models import ChangeSet, Record
from shared.dataverse.paging import NextLinkPaginator
from shared.dataverse.tables import PRIMARY_IDS

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient


class Cursor(Protocol):
    @property
    def value(self) -> str: ...

    @property
    def etag(self) -> str | None: ...


class CursorStore(Protocol):
    """What this reader needs from shared/store (the cursors table)."""

    def get(self, name: str) -> Cursor | None: ...

    def save(self, name: str, value: str, etag: str | None = None) -> object: ...


class ChangeTrackingReader:
    def __init__(
        self,
        client: DataverseClient,
        cursors: CursorStore,
        entity_set: str,
        *,
        select: Sequence[str],
        cursor_name: str | None = None,
        page_size: int | None = None,
    ) -> None:
        if not select:
            raise ValueError("select the columns to track (change tracking returns only those)")
        self.client = client
        self.cursors = cursors
        self.entity_set = odata.prop(entity_set)
        self.select = [odata.prop(s) for s in select]
        self.cursor_name = cursor_name or f"dataverse-delta-{entity_set}"
        self.page_size = page_size or client.page_size
        self._etag: str | None = None

    def read(self) -> ChangeSet:
        """Everything changed since the saved delta link (or a full load if there is none)."""
        cursor = self.cursors.get(self.cursor_name)
        self._etag = cursor.etag if cursor is not None else None
        if cursor is None or not cursor.value:
            return self._read(None, PRIMARY_IDS.get(self.entity_set), reason="no delta link yet")
        try:
            self.client.check_link(cursor.value, what=f"the delta link saved in cursor {self.cursor_name!r}")
        except DataverseForeignLink as exc:
            raise DataverseForeignLink(
                f"{exc}. If DATAVERSE_URL changed on purpose, delete that cursor so the next poll "
                "starts a full sync"
            ) from None
        try:
            return self._read(cursor.value, PRIMARY_IDS.get(self.entity_set))
        except DataverseDeltaTokenExpired:
            return self._read(None, PRIMARY_IDS.get(self.entity_set), reason="delta token expired")

    def advance(self, changes: ChangeSet) -> None:
        """Persist the delta link of `changes` (call after the changes were published)."""
        saved = self.cursors.save(self.cursor_name, changes.delta_link, etag=self._etag)
        etag = getattr(saved, "etag", None)
        self._etag = etag if isinstance(etag, str) else None

    def _read(self, delta_link: str | None, pk: str | None, reason: str | None = None) -> ChangeSet:
        headers = {"Prefer": f"odata.track-changes,odata.maxpagesize={self.page_size}"}
        params: dict[str, str] | None
        if delta_link is None:
            url, params = self.entity_set, {"$select": ",".join(self.select)}
        else:
            url, params = delta_link, None
        upserts: list[Record] = []
        deleted: list[str] = []
        pages = NextLinkPaginator(
            self.client, url, params=params, headers=headers, what=f"change tracking on {self.entity_set}"
        )
        for body in pages:
            for row in body.get("value", []):
                context = str(row.get("@odata.context", ""))
                if context.endswith("$deletedEntity") or row.get("reason") == "deleted":
                    deleted.append(str(row["id"]))
                else:
                    upserts.append(Record.from_json(self.entity_set, row, pk))
        final_link = pages.delta_link
        if final_link is None:
            raise DataverseError(
                f"change tracking on {self.entity_set} returned no @odata.deltaLink; is change tracking "
                "enabled for the table?"
            )
        return ChangeSet(
            self.entity_set, upserts, deleted, final_link, full_sync=delta_link is None, reason=reason
        )
