"""Errors of the state store (Table Storage)."""

from __future__ import annotations


class StoreError(Exception):
    """Table Storage could not complete an operation (transient unless stated)."""


class StoreConflictError(StoreError):
    """An ETag-conditional write lost to a concurrent writer, or an insert found the row taken."""
