"""State on Azure Table Storage: links, ledger, cursors and audit (DESIGN §7)."""

from shared.store.audit import AuditEntry, AuditLog, AuditResult
from shared.store.cursors import Cursor, CursorStore
from shared.store.errors import ClaimTaken, LinkNotFoundError, StoreConflictError, StoreError
from shared.store.ledger import Ledger
from shared.store.links import Claim, Link, LinkSide, LinkState, LinkStore
from shared.store.state import StateStore, StoreHealth, identity_credential

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditResult",
    "Claim",
    "ClaimTaken",
    "Cursor",
    "CursorStore",
    "Ledger",
    "Link",
    "LinkNotFoundError",
    "LinkSide",
    "LinkState",
    "LinkStore",
    "StateStore",
    "StoreConflictError",
    "StoreError",
    "StoreHealth",
    "identity_credential",
]
