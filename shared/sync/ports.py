"""Ports: what the record-sync engine and the flows need from the outside world, as Protocols.

The flows are typed against these, never against a concrete client: the composition root
(shared/runtime.py) hands them the real adapters (BrightpearlClient, DataverseClient,
StateStore), unit tests hand them the in-memory fakes of shared/sync/fakes.py, and the
contract tests in tests/contract/test_fakes_agree.py run the same checks against fake and
simulator so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import timedelta

    from shared.brightpearl.client import MultiMessageResult
    from shared.brightpearl.models import (
        ContactTag,
        OrderStatus,
        PriceList,
        ProductAvailability,
        ProductPrice,
    )
    from shared.brightpearl.transport import BrightpearlResponse
    from shared.dataverse.models import BatchOperation, BatchResult, BulkResult, Record
    from shared.events import Envelope
    from shared.store.audit import AuditEntry
    from shared.store.cursors import Cursor
    from shared.store.links import Claim, Link

Publish = Callable[[list["Envelope"]], None]
"""Publish change notices to the topic a flow's source writes to (split-off bad records)."""


class BrightpearlPort(Protocol):
    """The Brightpearl calls the flows and pollers make (shared/brightpearl/client.py)."""

    def request(self, method: str, path: str, **kwargs: Any) -> BrightpearlResponse: ...

    def get_by_ids(
        self,
        path: str,
        ids: Iterable[int],
        *,
        limit: int | None = 200,
        params: dict[str, Any] | None = None,
    ) -> list[Any]: ...

    def search_contacts(
        self,
        *,
        updated_since: Any = None,
        updated_until: Any = None,
        primary_email: str | None = None,
        is_customer: bool | None = None,
        columns: list[str] | None = None,
        sort: str | None = "contactId.ASC",
        page_size: int | None = None,
        **filters: Any,
    ) -> Iterable[dict[str, Any]]: ...

    def search_products(
        self,
        *,
        sku: str | None = None,
        updated_since: Any = None,
        columns: list[str] | None = None,
        **filters: Any,
    ) -> Iterable[dict[str, Any]]: ...

    def search_orders(
        self,
        *,
        updated_since: Any = None,
        updated_until: Any = None,
        columns: list[str] | None = None,
        sort: str | None = "orderId.ASC",
        **filters: Any,
    ) -> Iterable[dict[str, Any]]:
        """order-search rows (reference §4.2), by updatedOn in [updated_since, updated_until]."""
        ...

    def get_product_availability(self, product_ids: Iterable[int]) -> dict[int, ProductAvailability]:
        """Stock per product then warehouse (≤ 200 ids a call); not stock-tracked: absent."""
        ...

    def update_product(self, product_id: int, body: dict[str, Any], *, version: int | None) -> None:
        """Product PUT with `If-Match: version` (reference §7.2); a stale version raises
        BrightpearlPreconditionFailed (412)."""
        ...

    def search_goods_movements(
        self, *, updated_since: Any = None, columns: list[str] | None = None, **filters: Any
    ) -> Iterable[dict[str, Any]]:
        """goods-movement-search rows (goodsMovementId ascending), by updatedOn >= updated_since."""
        ...

    def get_price_lists(self, ids: Iterable[int] | None = None) -> list[PriceList]:
        """Price lists (reference §7.3): all of them, or those of `ids`."""
        ...

    def get_product_prices(
        self, product_ids: Iterable[int], price_list_ids: Iterable[int] | None = None
    ) -> list[ProductPrice]:
        """product-price of the products (≤ 200 ids a call) in the lists named (None: every list);
        products that do not exist are absent."""
        ...

    def create_sales_order(self, order: Any) -> int:
        """The atomic sales-order POST with all rows (reference §6.2); the new order id. A
        timeout after sending raises BrightpearlAmbiguousWrite (it may have been applied)."""
        ...

    def find_order_ids_by_external_ref(
        self, external_ref: str, integration_instance_id: int | None = None
    ) -> list[int]:
        """The ids of the sales orders (never credits) whose externalRef is exactly
        `external_ref` and, when `integration_instance_id` is given, whose
        installedIntegrationInstanceId is that one (sales-order-search; reference §4.2, §6.2)."""
        ...

    def put_sales_order_rows(self, order_id: int, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """Replace order rows in one call (`{id, productId|name, quantity, taxCode, net, tax}`);
        the rows Brightpearl refused, by row id, with its messages (reference §6.2)."""
        ...

    def add_order_row(self, order_id: int, row: Mapping[str, Any]) -> int:
        """Add one row to an order (reference §6.5; amounts to 2 d.p.); the new row id."""
        ...

    def delete_order_row(self, order_id: int, row_id: int) -> None: ...

    def get_order_statuses(self) -> list[OrderStatus]: ...

    def set_order_status(
        self, order_id: int, status_id: int, *, note: str | None = None, public: bool = False
    ) -> None:
        """PUT order/{id}/status (reference §6.6); the cancelled status has Brightpearl's rules."""
        ...

    def multi_message(
        self,
        messages: list[dict[str, Any]],
        *,
        processing_mode: str = "SEQUENTIAL",
        on_fail: str = "CONTINUE",
    ) -> MultiMessageResult: ...

    def create_many(self, uri: str, bodies: Sequence[dict[str, Any]]) -> Sequence[int | BaseException]:
        """POST each body (multi-message groups of up to ten); one new id or error per body."""
        ...

    def highest_created_id(self, uri: str) -> int | None:
        """The highest id a create POSTed to `uri` answered in this process (None before any)."""
        ...

    def patch_contact(self, contact_id: int, ops: Iterable[Any]) -> Any: ...

    def patch_contact_custom_fields(self, contact_id: int, ops: Iterable[Any]) -> object: ...

    def create_postal_address(self, address: Any) -> int: ...

    def update_postal_address(self, address_id: int, address: Any) -> object: ...

    def link_contact_addresses(self, contact_id: int, links: list[dict[str, Any]]) -> object: ...

    def add_contacts_to_group(self, group_id: int, contact_ids: Iterable[int]) -> object: ...

    def get_tags(self, ids: Iterable[int] | None = None) -> list[ContactTag]: ...

    def create_tag(self, name: str, description: str | None = None) -> int: ...

    def tag_contacts(self, contact_ids: Iterable[int], tag_id: int) -> object: ...


class DataversePort(Protocol):
    """The Dataverse calls the flows make (shared/dataverse/client.py): queries and bulk writes."""

    def query(self, entity_set: str, **kwargs: Any) -> Iterator[Record]: ...

    def upsert_multiple(
        self,
        entity_set: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        key_columns: Sequence[str],
        **kwargs: Any,
    ) -> BulkResult: ...

    def update_multiple(
        self, entity_set: str, rows: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> BulkResult: ...

    def create(self, entity_set: str, data: Mapping[str, Any], *, detect_duplicates: bool = False) -> str:
        """POST one row (reference data a flow needs, e.g. a unit group); its new id."""
        ...

    def execute_batch(
        self, ops: Sequence[BatchOperation], *, continue_on_error: bool = True, change_set: bool = False
    ) -> list[BatchResult]:
        """Up to 1000 requests in one `$batch` (e.g. state changes: PATCH statecode/statuscode)."""
        ...

    def execute_change_sets(self, groups: Sequence[Sequence[BatchOperation]]) -> list[list[BatchResult]]:
        """Many change sets (each atomic) in one `$batch`, at most 1000 operations in all."""
        ...


class ClaimKeeperPort(Protocol):
    def held(self, claim: Claim) -> bool: ...


class LinksPort(Protocol):
    """Cross-system links, content hashes and creation claims (shared/store/links.py)."""

    def get(self, entity: str, system: str, record_id: str | int) -> Link | None: ...

    def get_many(self, entity: str, system: str, record_ids: Iterable[str | int]) -> dict[str, Link]: ...

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
    ) -> Link: ...

    def record_hashes(
        self,
        entity: str,
        system: str,
        record_id: str | int,
        hashes: Mapping[str, str],
        *,
        etag: str | None = None,
    ) -> Link: ...

    def claim(self, entity: str, source_system: str, source_id: str | int, target_system: str) -> Claim: ...

    def save_progress(self, claim: Claim, progress: Mapping[str, Any]) -> Claim: ...

    def keep(self, claims: Iterable[Claim]) -> AbstractContextManager[ClaimKeeperPort]: ...

    def complete_claim(
        self,
        claim: Claim,
        target_id: str | int,
        *,
        source_hash: str | None = None,
        target_hash: str | None = None,
    ) -> Link: ...

    def release_claim(self, claim: Claim) -> None: ...


class LedgerPort(Protocol):
    """Keys of things done once (one dead letter per bad record version; shared/store/ledger.py)."""

    def record(self, key: str, *, holder: str | None = None, ttl: timedelta | None = None) -> bool:
        """True if this call recorded `key` (absent or expired), False if it is held; `ttl`:
        how long it lives (default: the ledger's retention), e.g. a lease."""
        ...

    def record_for(self, key: str, holder: str) -> bool: ...

    def forget(self, key: str) -> None: ...


class AuditPort(Protocol):
    def record_many(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]: ...


class CursorsPort(Protocol):
    def get(self, name: str) -> Cursor | None: ...

    def save(self, name: str, value: str, etag: str | None = None) -> Cursor: ...

    def delete(self, name: str, etag: str | None = None) -> None: ...


class StateStorePort(Protocol):
    """The integration's own state (shared/store/state.py: four tables)."""

    @property
    def links(self) -> LinksPort: ...

    @property
    def ledger(self) -> LedgerPort: ...

    @property
    def audit(self) -> AuditPort: ...

    @property
    def cursors(self) -> CursorsPort: ...
