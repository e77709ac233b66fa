"""CursorStore against Azurite: watermarks and delta links with ETag-conditional saves."""

from __future__ import annotations

import pytest

from shared.store import StateStore, StoreConflictError

DELTA = ("https://org.crm.dynamics.com/api/data/v9.2/contacts?$select=fullname"
         "&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44")


def test_create_read_and_advance(state_store: StateStore) -> None:
    cursors = state_store.cursors
    assert cursors.get("dataverse:contact") is None
    created = cursors.save("dataverse:contact", DELTA)
    read = cursors.get("dataverse:contact")
    assert read == created and read.value == DELTA  # type: ignore[union-attr]

    advanced = cursors.save("dataverse:contact", DELTA + "2", etag=created.etag)
    assert advanced.etag != created.etag
    assert cursors.get("dataverse:contact").value == DELTA + "2"  # type: ignore[union-attr]


def test_stale_etag_is_a_conflict_naming_table_and_key(state_store: StateStore) -> None:
    cursors = state_store.cursors
    first = cursors.save("brightpearl/contact updatedOn", "2026-03-01T00:00:00Z")
    cursors.save("brightpearl/contact updatedOn", "2026-03-02T00:00:00Z", etag=first.etag)

    with pytest.raises(StoreConflictError) as lost:  # a second poller with the old version
        cursors.save("brightpearl/contact updatedOn", "2026-03-01T12:00:00Z", etag=first.etag)
    error = lost.value
    assert error.table == cursors.table_name
    assert error.row_key == "brightpearl~2Fcontact updatedOn"
    assert cursors.table_name in str(error) and "ETag" in str(error)
    assert cursors.get("brightpearl/contact updatedOn").value == "2026-03-02T00:00:00Z"  # type: ignore[union-attr]


def test_creating_an_existing_cursor_is_a_conflict(state_store: StateStore) -> None:
    cursors = state_store.cursors
    cursors.save("c", "1")
    with pytest.raises(StoreConflictError, match="already exists"):
        cursors.save("c", "2")
    assert cursors.get("c").value == "1"  # type: ignore[union-attr]


def test_advancing_a_deleted_cursor_is_a_conflict(state_store: StateStore) -> None:
    cursors = state_store.cursors
    saved = cursors.save("c", "1")
    cursors.delete("c")
    with pytest.raises(StoreConflictError):
        cursors.save("c", "2", etag=saved.etag)


def test_conditional_delete(state_store: StateStore) -> None:
    cursors = state_store.cursors
    first = cursors.save("c", "1")
    second = cursors.save("c", "2", etag=first.etag)
    with pytest.raises(StoreConflictError):
        cursors.delete("c", etag=first.etag)
    cursors.delete("c", etag=second.etag)
    assert cursors.get("c") is None


def test_bad_values_are_refused_with_the_reason(state_store: StateStore) -> None:
    with pytest.raises(ValueError, match="limit is 32000"):
        state_store.cursors.save("c", "x" * 32_001)
    with pytest.raises(ValueError, match="cursor name"):
        state_store.cursors.save("", "1")
