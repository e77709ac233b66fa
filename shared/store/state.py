"""The state store: one Table Storage account holding the links, ledger, cursors and audit tables.

`StateStore.from_settings(StoreSettings)` connects with the connection string
(`AzureWebJobsStorage`, `UseDevelopmentStorage=true` for Azurite) or, in Azure, with the
function app's identity: `AzureWebJobsStorage__accountName` / `__tableServiceUri` plus
ManagedIdentityCredential(client_id=`AzureWebJobsStorage__clientId`) for a user-assigned
identity, else DefaultAzureCredential. The identity needs the "Storage Table Data
Contributor" role on the account. Table names are STATE_TABLE_PREFIX + links|ledger|cursors|audit.
"""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.data.tables import TableServiceClient
from pydantic import BaseModel, ConfigDict

from shared.settings import StoreSettings
from shared.store.audit import AuditLog
from shared.store.cursors import CursorStore
from shared.store.errors import StoreError
from shared.store.ledger import Ledger
from shared.store.links import DEFAULT_CLAIM_LEASE, LinkStore
from shared.store.tables import Clock, translate_errors, utc_now, validate_table_name

TABLES = ("links", "ledger", "cursors", "audit")


class StoreHealth(BaseModel):
    """What the health endpoint reports about the state store."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    endpoint: str
    missing_tables: list[str] = []
    error: str | None = None


# Per request: a storage call that gets no answer fails after read_timeout (and is retried by the
# SDK) instead of the transport's 300 s default, which froze a whole batch for five minutes
# when Azurite swallowed one request in a chaos run.
REQUEST_TIMEOUTS: dict[str, Any] = {"connection_timeout": 10.0, "read_timeout": 30.0}


class StateStore:
    """The four state stores on one TableServiceClient: `links`, `ledger`, `cursors`, `audit`."""

    def __init__(
        self,
        service: TableServiceClient,
        *,
        table_prefix: str = "",
        ledger_retention: timedelta = timedelta(days=14),
        audit_retention_days: int = 90,
        claim_timeout: timedelta = DEFAULT_CLAIM_LEASE,
        clock: Clock = utc_now,
    ) -> None:
        self.service = service
        self.table_prefix = table_prefix
        self.table_names = {name: validate_table_name(f"{table_prefix}{name}") for name in TABLES}
        self._options: dict[str, Any] = {
            "table_prefix": table_prefix,
            "ledger_retention": ledger_retention,
            "audit_retention_days": audit_retention_days,
            "claim_timeout": claim_timeout,
        }
        self.links = LinkStore(self._table("links"), claim_timeout=claim_timeout, clock=clock)
        self.ledger = Ledger(self._table("ledger"), retention=ledger_retention, clock=clock)
        self.cursors = CursorStore(self._table("cursors"), clock=clock)
        self.audit = AuditLog(self._table("audit"), retention_days=audit_retention_days, clock=clock)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: StoreSettings,
        *,
        credential: TokenCredential | None = None,
        clock: Clock = utc_now,
        ensure_tables: bool = False,
    ) -> StateStore:
        """Connect as the settings say: connection string first, else endpoint + identity.

        Builds clients only (no request) unless `ensure_tables`, which also creates any
        missing table (four idempotent requests; what the function app does at start-up).
        """
        options: dict[str, Any] = {
            "table_prefix": settings.table_prefix,
            "ledger_retention": timedelta(days=settings.ledger_retention_days),
            "audit_retention_days": settings.audit_retention_days,
            "claim_timeout": timedelta(seconds=settings.link_claim_timeout_seconds),
            "clock": clock,
        }
        if settings.connection_string:
            store = cls.from_connection_string(settings.connection_string, **options)
        else:
            endpoint = settings.table_endpoint
            if endpoint is None:  # StoreSettings' own validation prevents this
                raise StoreError("state storage has neither a connection string nor an endpoint")
            if credential is None:
                credential = identity_credential(settings.managed_identity_client_id)
            service = TableServiceClient(endpoint=endpoint, credential=credential, **REQUEST_TIMEOUTS)
            store = cls(service, **options)
        if ensure_tables:
            store.ensure_tables()
        return store

    @classmethod
    def from_connection_string(cls, connection_string: str, **options: Any) -> StateStore:
        try:
            service = TableServiceClient.from_connection_string(connection_string, **REQUEST_TIMEOUTS)
        except ValueError as exc:
            raise StoreError(
                f"AzureWebJobsStorage is not a usable storage connection string: {exc}"
            ) from None
        return cls(service, **options)

    def with_clock(self, clock: Clock) -> StateStore:
        """The same tables seen through another clock (tests, replays)."""
        return StateStore(self.service, clock=clock, **self._options)

    # -- tables ----------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The table endpoint without any query string (a SAS token never leaves here)."""
        parts = urlsplit(self.service.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")

    def ensure_tables(self) -> None:
        """Create the four tables if they do not exist (idempotent)."""
        for name in self.table_names.values():
            with translate_errors(name, "create table"):
                self.service.create_table_if_not_exists(name)

    def drop_tables(self) -> None:
        """Delete the four tables (tests and sandbox resets); missing tables are fine."""
        for name in self.table_names.values():
            with translate_errors(name, "delete table"):
                self.service.delete_table(name)

    def check(self) -> StoreHealth:
        """For the health endpoint: the StoreHealth when all is well, else StoreError saying why."""
        health = self.health()
        if not health.ok:
            raise StoreError(f"state store at {health.endpoint} is not usable: {health.error}")
        return health

    def health(self) -> StoreHealth:
        """One round trip: can we reach the account, and do our tables exist? Never raises."""
        wanted = list(self.table_names.values())
        filter_ = " or ".join(f"TableName eq @t{index}" for index in range(len(wanted)))
        parameters = {f"t{index}": name for index, name in enumerate(wanted)}
        try:
            with translate_errors(",".join(wanted), "health check"):
                present = {table.name for table in self.service.query_tables(filter_, parameters=parameters)}
        except StoreError as exc:
            return StoreHealth(ok=False, endpoint=self.endpoint, error=str(exc))
        missing = [name for name in wanted if name not in present]
        return StoreHealth(
            ok=not missing,
            endpoint=self.endpoint,
            missing_tables=missing,
            error=f"missing tables: {', '.join(missing)}" if missing else None,
        )

    def close(self) -> None:
        self.service.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _table(self, name: str) -> Any:
        return self.service.get_table_client(self.table_names[name])


def identity_credential(client_id: str | None) -> TokenCredential:
    """ManagedIdentityCredential for a user-assigned identity, else DefaultAzureCredential."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()


__all__ = ["TABLES", "StateStore", "StoreHealth", "identity_credential"]
