"""Errors of the state store (Table Storage)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

from shared.store.link_model import Link


class StoreError(Exception):
    """Table Storage could not complete an operation (transient unless stated)."""


@dataclass(eq=False, repr=False)
class StoreConflictError(StoreError):
    """An ETag-conditional write lost to a concurrent writer, or an insert found the row taken.

    `table`, `partition_key` and `row_key` name the row that was contested (when known).
    """

    message: str
    _: KW_ONLY
    table: str | None = None
    partition_key: str | None = None
    row_key: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)


@dataclass(eq=False, repr=False)
class ClaimTaken(StoreConflictError):
    """A creation claim was refused: another worker holds a live claim, or the record is linked.

    `link` is what the store holds for the record now: a pending link (someone else is creating
    the target record; retry later) or a linked one (use its target id instead of creating).
    `retry_after`: seconds until a pending claim's lease runs out (None when not pending).
    `table`, `partition_key` and `row_key` are always given here.
    """

    _: KW_ONLY
    link: Link | None
    table: str
    partition_key: str
    row_key: str
    retry_after: float | None = None


class LinkNotFoundError(LookupError):
    """An operation needs an existing link and there is none for the given record."""
