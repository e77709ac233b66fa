"""Cross-references between the same business record in two systems, with creation claims.

Table `links`. Table Storage has no secondary index, so a link is two rows:

- the *origin* row, PartitionKey `"{entity}|{source_system}"`, RowKey = the source id. It is
  the single authority for the link's state (`pending` while the target record is being
  created, then `linked`), the target id, the last-synced content hash of each side and the
  timestamps. Every change of a link is an ETag-conditional write of this one row, so two
  writers can never leave half-updated state behind.
- the *mirror* row, PartitionKey `"{entity}|{target_system}"`, RowKey = the target id, an
  immutable pointer back to the origin row. A lookup from the target side reads the mirror,
  then the origin; a mirror whose origin does not point back (a crash between the two writes)
  is ignored.

Creation claim (so two workers never create the same record twice): before creating a record
in the target system, a worker calls `claim()`, an insert of a pending origin row that fails if
the row exists. The loser gets `ClaimTaken` carrying the current link. After creating the
record the winner calls `complete_claim()` (mirror row, then origin row conditional on the
claim's ETag). Every write on behalf of a claim checks the claim's token, so once the claim is
taken over, the old holder's writes fail with StoreConflictError.

A claim is a lease: it records its owner (instance and process) and `lease_until`, and the
owner renews it while it works (`keep()` renews in the background every third of the lease).
A claim whose lease ran out (its owner died) can be taken over by the next `claim()`,
ETag-conditionally, so only one worker takes it over; the new claim says `takeover=True`, and
the new holder must first look for a record the old one may have created.

A claim also keeps the holder's `progress`: what it already created in the target system on
the way to the record (e.g. the postal addresses a Brightpearl contact POST references). When
the holder gives up after a definite failure (`release_claim`) a claim with progress is not
deleted but left *released*: the next `claim()` resumes it at once (no lease wait, no search)
with the progress, so a retry or a takeover reuses those parts instead of creating them again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.store.errors import ClaimTaken, LinkNotFoundError, StoreConflictError
from shared.store.link_model import Claim as Claim
from shared.store.link_model import Link as Link
from shared.store.link_model import LinkSide as LinkSide
from shared.store.link_model import LinkState as LinkState
from shared.store.tables import (
    Clock,
    escape_key,
    etag_of,
    get_row,
    identifier,
    optional_utc,
    rows_by_keys,
    to_utc,
    translate_errors,
    unescape_key,
    utc_now,
)

ORIGIN = "origin"
MIRROR = "mirror"
DEFAULT_CLAIM_LEASE = timedelta(seconds=90)

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def instance_id() -> str:
    """Who holds a claim: the Functions instance (WEBSITE_INSTANCE_ID in Azure, else the host
    name) and the process id, so an operator can tell which worker a pending claim belongs to."""
    instance = os.environ.get("WEBSITE_INSTANCE_ID") or socket.gethostname() or "unknown"
    return f"{instance[:40]}/{os.getpid()}"


class LinkStore:
    """Links per entity type in both directions, with creation claims and content hashes."""

    def __init__(
        self,
        table: TableClient,
        *,
        claim_timeout: timedelta = DEFAULT_CLAIM_LEASE,
        clock: Clock = utc_now,
        owner: str | None = None,
    ) -> None:
        if claim_timeout <= timedelta(0):
            raise ValueError("claim_timeout must be positive")
        self.table = table
        self.claim_timeout = claim_timeout  # the lease of a creation claim
        self.owner = owner or instance_id()
        self._clock = clock

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def now(self) -> datetime:
        """The store's clock (leases are measured by it)."""
        return self._clock()

    # -- reads -----------------------------------------------------------------------------
    def get(self, entity: str, system: str, record_id: str | int) -> Link | None:
        """The link of a record known by its id in `system` (either side), or None."""
        pk, rk = self._keys(entity, system, record_id)
        row = get_row(self.table, pk, rk, "read link")
        if row is None:
            return None
        if row.get("role") == ORIGIN:
            return _link_from_row(row)
        origin = get_row(self.table, *self._origin_keys_of_mirror(row), "read link")
        return _confirmed(origin, system, unescape_key(rk))

    def get_many(self, entity: str, system: str, record_ids: Iterable[str | int]) -> dict[str, Link]:
        """Links of many records of one system, keyed by their id there; absent ids are left out.

        One query per 14 ids (plus one per 14 mirrors whose origin has to be read).
        """
        ids = [identifier(value, field="record_id") for value in record_ids]
        pk = self._partition(entity, system)
        rows = rows_by_keys(self.table, pk, [escape_key(i, field="record_id") for i in ids], "read links")
        found: dict[str, Link] = {}
        wanted_origins: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for row_key, row in rows.items():
            record_id = unescape_key(row_key)
            if row.get("role") == ORIGIN:
                found[record_id] = _link_from_row(row)
            else:
                origin_pk, origin_rk = self._origin_keys_of_mirror(row)
                wanted_origins[origin_pk].append((origin_rk, record_id))
        for origin_pk, pairs in wanted_origins.items():
            origins = rows_by_keys(self.table, origin_pk, [rk for rk, _ in pairs], "read links")
            for origin_rk, record_id in pairs:
                link = _confirmed(origins.get(origin_rk), system, record_id)
                if link is not None:
                    found[record_id] = link
        return found

    def all_links(self, entity: str) -> Iterator[Link]:
        """Every link of `entity` (its origin rows, either direction), as the service pages them
        (reconciliation reads them all once; flows look links up by id)."""
        prefix = escape_key(entity, field="entity")
        flt = f"PartitionKey ge '{prefix}|' and PartitionKey lt '{prefix}}}' and role eq '{ORIGIN}'"
        with translate_errors(self.table_name, "list links"):
            for row in self.table.query_entities(flt):
                yield _link_from_row(row)

    # -- creation claims -------------------------------------------------------------------
    def claim(self, entity: str, source_system: str, source_id: str | int, target_system: str) -> Claim:
        """Claim the right to create the target record of a source record.

        Raises ClaimTaken (a StoreConflictError) when the record already has a link or a live
        claim of another worker; `exc.link` is that link (with its owner and lease).
        """
        if source_system == target_system:
            raise ValueError(f"source_system and target_system are both {source_system!r}")
        source_id = identifier(source_id, field="source_id")
        pk, rk = self._keys(entity, source_system, source_id)
        now = self._clock()
        token = uuid.uuid4().hex
        lease_until = now + self.claim_timeout
        row: dict[str, Any] = {
            "PartitionKey": pk,
            "RowKey": rk,
            "role": ORIGIN,
            "entity": entity,
            "state": LinkState.PENDING.value,
            "source_system": source_system,
            "source_id": source_id,
            "target_system": target_system,
            "claim_token": token,
            "claim_owner": self.owner,
            "claimed_at": now,
            "lease_until": lease_until,
            "created_at": now,
            "updated_at": now,
        }

        existing: TableEntity | None = None
        for _ in range(3):  # an insert, or a retry after a row vanished or an orphan was cleared
            try:
                with translate_errors(self.table_name, "claim", pk, rk):
                    meta = self.table.create_entity(row)
                return _claim_from_row(row, str(meta["etag"]), takeover=False)
            except StoreConflictError:
                pass
            existing = get_row(self.table, pk, rk, "claim")
            if existing is None:  # released between our insert and our read
                continue
            if existing.get("role") != ORIGIN:
                if self._remove_if_orphan(existing):
                    continue
                break
            released = bool(existing.get("released"))
            if not (released or self._is_stale_claim(existing, now)):
                break
            created_at = to_utc(existing["created_at"])
            progress = _progress_of(existing)
            taken: dict[str, Any] = {**row, "created_at": created_at, "released": False}
            if progress:
                taken["progress"] = json.dumps(progress)
            try:
                with translate_errors(
                    self.table_name, "take over stale claim", pk, rk, missing_row_is_conflict=True
                ):
                    meta = self.table.update_entity(
                        taken,
                        mode=UpdateMode.REPLACE,
                        etag=etag_of(existing),
                        match_condition=MatchConditions.IfNotModified,
                    )
                if not released:
                    log.warning(
                        "took over the %s creation claim of %s:%s from %s (lease ended)",
                        entity,
                        source_system,
                        source_id,
                        existing.get("claim_owner") or "?",
                    )
                return _claim_from_row(taken, str(meta["etag"]), takeover=not released)
            except StoreConflictError:
                existing = get_row(self.table, pk, rk, "claim")
                break
        link = self._current(existing)
        state = link.state.value if link is not None else "contested"
        holder, retry_after = "", None
        if link is not None and not link.is_linked:
            holder = f" held by {link.claim_owner or '?'} until {link.lease_until or '?'}"
            if link.lease_until is not None:
                retry_after = max((link.lease_until - now).total_seconds(), 0.0) + 1.0
        raise ClaimTaken(
            f"claim {entity} {source_system}:{source_id} -> {target_system}: the record already "
            f"has a {state} link{holder} in table {self.table_name!r} (PartitionKey={pk!r}, "
            f"RowKey={rk!r})",
            link=link,
            table=self.table_name,
            partition_key=pk,
            row_key=rk,
            retry_after=retry_after,
        )

    def renew_claim(self, claim: Claim) -> Claim:
        """Extend the claim's lease by `claim_timeout` from now (its owner is still working).

        Raises StoreConflictError if the claim was taken over, released or completed.
        """
        lease_until = self._clock() + self.claim_timeout
        meta = self._write_claim(claim, "renew claim", {"lease_until": lease_until})
        return claim.model_copy(update={"etag": str(meta["etag"]), "lease_until": lease_until})

    def save_progress(self, claim: Claim, progress: Mapping[str, Any]) -> Claim:
        """Keep what the holder created so far with the claim (and renew its lease), so a retry
        or a takeover reuses it. Raises StoreConflictError if the claim is no longer held."""
        lease_until = self._clock() + self.claim_timeout
        saved = dict(progress)
        meta = self._write_claim(
            claim, "save claim progress", {"lease_until": lease_until, "progress": json.dumps(saved)}
        )
        return claim.model_copy(
            update={"etag": str(meta["etag"]), "lease_until": lease_until, "progress": saved}
        )

    @contextmanager
    def keep(self, claims: Iterable[Claim], *, every: float | None = None) -> Iterator[ClaimKeeper]:
        """Renew these claims in the background while the caller works (every third of the
        lease unless `every` seconds is given); `keeper.held(claim)` tells whether a claim is
        still ours (a renewal found it taken over: do not create its record)."""
        keeper = ClaimKeeper(self, claims, every or self.claim_timeout.total_seconds() / 3)
        keeper.start()
        try:
            yield keeper
        finally:
            keeper.stop()

    def complete_claim(
        self,
        claim: Claim,
        target_id: str | int,
        *,
        source_hash: str | None = None,
        target_hash: str | None = None,
    ) -> Link:
        """Record the created target record: mirror row, then the origin row becomes `linked`.

        Raises StoreConflictError if the claim was taken over or released meanwhile, or if
        the target record is already linked to another source record.
        """
        target_id = identifier(target_id, field="target_id")
        mirror_pk, mirror_rk = self._keys(claim.entity, claim.target_system, target_id)
        origin_pk, origin_rk = self._keys(claim.entity, claim.source_system, claim.source_id)
        now = self._clock()
        inserted_mirror = self._insert_mirror(claim, mirror_pk, mirror_rk, now)
        row = {
            "PartitionKey": origin_pk,
            "RowKey": origin_rk,
            "role": ORIGIN,
            "entity": claim.entity,
            "state": LinkState.LINKED.value,
            "source_system": claim.source_system,
            "source_id": claim.source_id,
            "target_system": claim.target_system,
            "target_id": target_id,
            "created_at": claim.created_at,
            "updated_at": now,
        }
        if source_hash is not None:
            row |= {"source_hash": source_hash, "source_synced_at": now}
        if target_hash is not None:
            row |= {"target_hash": target_hash, "target_synced_at": now}
        try:
            meta = self._on_claim(
                claim,
                "complete claim",
                lambda etag: self.table.update_entity(
                    row,
                    mode=UpdateMode.REPLACE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                ),
            )
        except StoreConflictError:
            if inserted_mirror:
                with translate_errors(self.table_name, "undo mirror", mirror_pk, mirror_rk):
                    self.table.delete_entity(mirror_pk, mirror_rk)
            raise
        return _link_from_row(row, etag=str(meta["etag"]))

    def release_claim(self, claim: Claim) -> None:
        """Give a claim up (the target record was not created). A claim with saved progress is
        left released (the next claim resumes it with that progress), any other is deleted.
        Raises StoreConflictError if the claim is no longer held."""
        pk, rk = self._keys(claim.entity, claim.source_system, claim.source_id)
        row = get_row(self.table, pk, rk, "release claim")
        if row is not None and row.get("claim_token") == claim.token and _progress_of(row):
            self._write_claim(
                claim,
                "release claim",
                {
                    "released": True,
                    "claim_token": "",
                    "claim_owner": "",
                    "lease_until": self._clock(),
                },
            )
            return
        self._on_claim(
            claim,
            "release claim",
            lambda etag: self.table.delete_entity(
                pk, rk, etag=etag, match_condition=MatchConditions.IfNotModified
            ),
        )

    def _write_claim(self, claim: Claim, what: str, changes: dict[str, Any]) -> Mapping[str, Any]:
        pk, rk = self._keys(claim.entity, claim.source_system, claim.source_id)
        row = {"PartitionKey": pk, "RowKey": rk, **changes}
        return self._on_claim(
            claim,
            what,
            lambda etag: self.table.update_entity(
                row, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
            ),
        )

    def _on_claim(self, claim: Claim, what: str, write: Callable[[str], _T]) -> _T:
        """An ETag-conditional write of the claim's origin row. When the ETag moved because the
        holder itself wrote meanwhile (a background renewal), retry with the current one as
        long as the row still carries this claim's token; otherwise the claim is lost."""
        pk, rk = self._keys(claim.entity, claim.source_system, claim.source_id)
        etag = claim.etag
        for _ in range(4):
            try:
                with translate_errors(self.table_name, what, pk, rk, missing_row_is_conflict=True):
                    return write(etag)
            except StoreConflictError:
                row = get_row(self.table, pk, rk, what)
                if (
                    row is None
                    or row.get("state") != LinkState.PENDING.value
                    or row.get("claim_token") != claim.token
                    or etag_of(row) == etag
                ):
                    raise
                etag = etag_of(row)
        raise StoreConflictError(
            f"{what}: the claim row in table {self.table_name!r} (PartitionKey={pk!r}, "
            f"RowKey={rk!r}) kept changing",
            table=self.table_name,
            partition_key=pk,
            row_key=rk,
        )

    def link(
        self,
        entity: str,
        source_system: str,
        source_id: str | int,
        target_system: str,
        target_id: str | int,
        *,
        source_hash: str | None = None,
        target_hash: str | None = None,
    ) -> Link:
        """Link two existing records (e.g. matched by e-mail). Idempotent for the same pair.

        Raises ClaimTaken if the source record is linked to another record or claimed, and
        StoreConflictError if the target record is linked to another source record.
        """
        target_id = identifier(target_id, field="target_id")
        try:
            claim = self.claim(entity, source_system, source_id, target_system)
        except ClaimTaken as taken:
            link = taken.link
            if (
                link is not None
                and link.is_linked
                and link.id_in(target_system) == target_id
                and link.id_in(source_system) == identifier(source_id, field="source_id")
            ):
                return link
            raise
        try:
            return self.complete_claim(claim, target_id, source_hash=source_hash, target_hash=target_hash)
        except StoreConflictError:
            self.release_claim(claim)
            raise

    # -- updates ---------------------------------------------------------------------------
    def record_hashes(
        self,
        entity: str,
        system: str,
        record_id: str | int,
        hashes: Mapping[str, str],
        *,
        etag: str | None = None,
    ) -> Link:
        """Store the last-synced content hash of one or both sides ({system: hash}).

        With `etag` (from a Link read earlier) the write succeeds only if nothing changed the
        link since; without it, only if nothing changed it between this call's read and write.
        Raises StoreConflictError on a lost race and LinkNotFoundError if there is no link.
        """
        link = self.get(entity, system, record_id)
        if link is None:
            raise LinkNotFoundError(f"no {entity} link for {system}:{record_id}")
        if not hashes:
            raise ValueError("hashes must name at least one system")
        pk, rk = self._keys(entity, link.source.system, link.source.id or "")
        if etag is not None and etag != link.etag:
            raise StoreConflictError(
                f"record hashes: the link in table {self.table_name!r} (PartitionKey={pk!r}, "
                f"RowKey={rk!r}) was changed since it was read (ETag mismatch)",
                table=self.table_name,
                partition_key=pk,
                row_key=rk,
            )
        now = self._clock()
        changes: dict[str, Any] = {"PartitionKey": pk, "RowKey": rk, "updated_at": now}
        for side_system, content_hash in hashes.items():
            role = "source" if link.side(side_system) is link.source else "target"
            if not isinstance(content_hash, str) or not content_hash:
                raise ValueError(f"hash of {side_system} must be a non-empty string")
            changes[f"{role}_hash"] = content_hash
            changes[f"{role}_synced_at"] = now
        with translate_errors(self.table_name, "record hashes", pk, rk, missing_row_is_conflict=True):
            meta = self.table.update_entity(
                changes,
                mode=UpdateMode.MERGE,
                etag=link.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        row = _row_from_link(link) | changes
        return _link_from_row(row, etag=str(meta["etag"]))

    def unlink(self, entity: str, system: str, record_id: str | int) -> bool:
        """Remove a link (both rows). False when there was none."""
        link = self.get(entity, system, record_id)
        if link is None:
            return False
        origin_pk, origin_rk = self._keys(entity, link.source.system, link.source.id or "")
        with translate_errors(self.table_name, "unlink", origin_pk, origin_rk):
            self.table.delete_entity(
                origin_pk, origin_rk, etag=link.etag, match_condition=MatchConditions.IfNotModified
            )
        if link.target.id is not None:
            mirror_pk, mirror_rk = self._keys(entity, link.target.system, link.target.id)
            with translate_errors(self.table_name, "unlink", mirror_pk, mirror_rk):
                self.table.delete_entity(mirror_pk, mirror_rk)
        return True

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _partition(entity: str, system: str) -> str:
        return f"{escape_key(entity, field='entity')}|{escape_key(system, field='system')}"

    def _keys(self, entity: str, system: str, record_id: str | int) -> tuple[str, str]:
        record_id = identifier(record_id, field="record_id")
        return self._partition(entity, system), escape_key(record_id, field="record_id")

    def _origin_keys_of_mirror(self, mirror: TableEntity) -> tuple[str, str]:
        return self._keys(str(mirror["entity"]), str(mirror["source_system"]), str(mirror["source_id"]))

    def _is_stale_claim(self, row: TableEntity, now: datetime) -> bool:
        """A pending claim whose lease ran out (rows written before leases: claimed_at + timeout)."""
        if row.get("state") != LinkState.PENDING.value:
            return False
        lease_until = optional_utc(row.get("lease_until"))
        if lease_until is not None:
            return now >= lease_until
        claimed_at = optional_utc(row.get("claimed_at"))
        return claimed_at is not None and now - claimed_at >= self.claim_timeout

    def _current(self, row: TableEntity | None) -> Link | None:
        """The link a row belongs to: its own (origin) or its origin's, pending or linked."""
        if row is None:
            return None
        if row.get("role") == ORIGIN:
            return _link_from_row(row)
        origin = get_row(self.table, *self._origin_keys_of_mirror(row), "read link")
        return _link_from_row(origin) if origin is not None and origin.get("role") == ORIGIN else None

    def _remove_if_orphan(self, mirror: TableEntity) -> bool:
        """Delete a mirror whose origin is gone or linked to another record (a crashed writer's
        leftover); True if it was removed. A mirror of a pending origin is kept: its writer may
        still complete."""
        origin = get_row(self.table, *self._origin_keys_of_mirror(mirror), "read link")
        if origin is not None and origin.get("role") == ORIGIN:
            link = _link_from_row(origin)
            if not link.is_linked:
                return False
            if link.target.system == _system_of(mirror["PartitionKey"]) and link.target.id == unescape_key(
                str(mirror["RowKey"])
            ):
                return False
        pk, rk = str(mirror["PartitionKey"]), str(mirror["RowKey"])
        try:
            with translate_errors(self.table_name, "remove orphaned mirror", pk, rk):
                self.table.delete_entity(
                    pk, rk, etag=etag_of(mirror), match_condition=MatchConditions.IfNotModified
                )
        except StoreConflictError:
            return False
        return True

    def _insert_mirror(self, claim: Claim, pk: str, rk: str, now: datetime) -> bool:
        """Insert the mirror row; False if an identical one is already there (a retry)."""
        mirror = {
            "PartitionKey": pk,
            "RowKey": rk,
            "role": MIRROR,
            "entity": claim.entity,
            "source_system": claim.source_system,
            "source_id": claim.source_id,
            "created_at": now,
        }
        for _ in range(2):
            try:
                with translate_errors(self.table_name, "complete claim", pk, rk):
                    self.table.create_entity(mirror)
                return True
            except StoreConflictError as exc:
                conflict = exc
            existing = get_row(self.table, pk, rk, "complete claim")
            if existing is None:
                continue
            if (
                existing.get("role") == MIRROR
                and existing.get("source_system") == claim.source_system
                and existing.get("source_id") == claim.source_id
            ):
                return False  # written by an earlier attempt of this completion
            if existing.get("role") == MIRROR and self._remove_if_orphan(existing):
                continue
            break
        raise StoreConflictError(
            f"complete claim: {claim.entity} {claim.target_system}:{unescape_key(rk)} is already "
            f"linked to another record (table {self.table_name!r}, PartitionKey={pk!r}, "
            f"RowKey={rk!r})",
            table=self.table_name,
            partition_key=pk,
            row_key=rk,
        ) from conflict


def _system_of(partition_key: str) -> str:
    return unescape_key(partition_key.split("|", 1)[1])


def _confirmed(origin: TableEntity | None, system: str, record_id: str) -> Link | None:
    """The origin's link if it really points at (system, record_id); else None (dangling)."""
    if origin is None or origin.get("role") != ORIGIN:
        return None
    link = _link_from_row(origin)
    if link.is_linked and link.target.system == system and link.target.id == record_id:
        return link
    return None


def _link_from_row(row: Mapping[str, Any], *, etag: str | None = None) -> Link:
    pending = row.get("state") == LinkState.PENDING.value
    created_at = to_utc(row["created_at"])
    updated_at = optional_utc(row.get("updated_at")) or created_at
    if etag is None and isinstance(row, TableEntity):
        etag = etag_of(row)
    return Link(
        entity=str(row["entity"]),
        state=LinkState(str(row["state"])),
        source=LinkSide(
            system=str(row["source_system"]),
            id=str(row["source_id"]),
            content_hash=row.get("source_hash"),
            synced_at=optional_utc(row.get("source_synced_at")),
        ),
        target=LinkSide(
            system=str(row["target_system"]),
            id=row.get("target_id"),
            content_hash=row.get("target_hash"),
            synced_at=optional_utc(row.get("target_synced_at")),
        ),
        created_at=created_at,
        updated_at=updated_at,
        claimed_at=optional_utc(row.get("claimed_at")) if pending else None,
        claim_owner=(str(row.get("claim_owner") or "") or None) if pending else None,
        lease_until=optional_utc(row.get("lease_until")) if pending else None,
        etag=etag or "",
    )


def _claim_from_row(row: Mapping[str, Any], etag: str, *, takeover: bool) -> Claim:
    """The claim an origin row just written (inserted or taken over) stands for."""
    return Claim(
        entity=str(row["entity"]),
        source_system=str(row["source_system"]),
        source_id=str(row["source_id"]),
        target_system=str(row["target_system"]),
        token=str(row["claim_token"]),
        claimed_at=row["claimed_at"],
        created_at=row["created_at"],
        etag=etag,
        owner=str(row["claim_owner"]),
        lease_until=row["lease_until"],
        takeover=takeover,
        progress=_progress_of(row),
    )


def _progress_of(row: Mapping[str, Any]) -> dict[str, Any]:
    text = row.get("progress")
    if not text:
        return {}
    try:
        value = json.loads(str(text))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ClaimKeeper:
    """Renews a set of claims on a background thread until stopped (see LinkStore.keep)."""

    def __init__(self, links: LinkStore, claims: Iterable[Claim], every: float) -> None:
        self._links = links
        self._claims = {c.token: c for c in claims}
        self._lost: set[str] = set()
        self._every = max(every, 0.01)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="claim-keeper", daemon=True)

    def start(self) -> None:
        if self._claims:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def held(self, claim: Claim) -> bool:
        """Still ours with a third of the lease left (renewals that failed for a while, e.g.
        storage unreachable, make this False before anyone else could take the claim over)."""
        with self._lock:
            if claim.token in self._lost:
                return False
            known = self._claims.get(claim.token, claim)
        if known.lease_until is None:
            return True
        return known.lease_until - self._links.now() > self._links.claim_timeout / 3

    def renew_now(self) -> None:
        """One round of renewals (the thread's work; callable directly)."""
        with self._lock:
            claims = [c for t, c in self._claims.items() if t not in self._lost]
        for claim in claims:
            if self._stop.is_set():
                return
            try:
                renewed = self._links.renew_claim(claim)
            except StoreConflictError:
                with self._lock:
                    self._lost.add(claim.token)
                log.warning(
                    "creation claim of %s:%s was lost while working on it",
                    claim.source_system,
                    claim.source_id,
                )
                continue
            except Exception as exc:  # storage unreachable: try again next round
                log.warning("renewing a creation claim failed: %s", type(exc).__name__)
                continue
            with self._lock:
                self._claims[claim.token] = renewed

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.renew_now()


def _row_from_link(link: Link) -> dict[str, Any]:
    row: dict[str, Any] = {
        "entity": link.entity,
        "state": link.state.value,
        "source_system": link.source.system,
        "source_id": link.source.id,
        "target_system": link.target.system,
        "target_id": link.target.id,
        "created_at": link.created_at,
        "updated_at": link.updated_at,
        "source_hash": link.source.content_hash,
        "source_synced_at": link.source.synced_at,
        "target_hash": link.target.content_hash,
        "target_synced_at": link.target.synced_at,
    }
    return row
