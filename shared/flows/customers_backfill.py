"""Customer backfill: the customers' listings for the generic backfill (shared/sync/backfill.py).

Brightpearl: contact-search of customers by contactId, paged with `firstResult` (a resumed
run jumps straight to its row). Dataverse: contacts oldest first, then by contactid, following
`@odata.nextLink` (a resumed run re-reads the skipped pages, ids only). `CustomerBackfill` is
the generic `Backfill` of the customers spec, kept for the callers that name the source's client.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Unpack

from shared.flows.customers_spec import CUSTOMERS
from shared.sync.backfill import (
    PAGE,
    Backfill,
    BackfillOptions,
    BackfillReport,
    BackfillState,
    IdPage,
    dataverse_pages,
    search_pages,
)
from shared.sync.ports import BrightpearlPort
from shared.systems import System

if TYPE_CHECKING:
    from shared.brightpearl.client import BrightpearlClient
    from shared.dataverse.client import DataverseClient

__all__ = ["PAGE", "BackfillReport", "BackfillState", "CustomerBackfill", "cursor_name"]

Source = System  # the system a backfill reads


def cursor_name(source: Source) -> str:
    return CUSTOMERS.backfill_cursor(source)


def list_brightpearl_customers(
    client: BrightpearlPort, *, since: datetime | None, position: int, page_size: int
) -> Iterator[IdPage]:
    """Brightpearl customers (contact-search isCustomer=true) by contactId, from row position + 1."""
    rows = client.search_contacts(
        updated_since=since,
        is_customer=True,
        columns=["contactId"],
        sort="contactId.ASC",
        page_size=page_size,
    )
    return search_pages(rows, "contactId", position, page_size)


def list_dataverse_contacts(
    client: DataverseClient, *, since: datetime | None, position: int, page_size: int
) -> Iterator[IdPage]:
    """Dataverse contacts, oldest first (an account's changes reach Brightpearl through them)."""
    return dataverse_pages(
        client, "contacts", "contactid", since=since, position=position, page_size=page_size
    )


class CustomerBackfill(Backfill):
    """The customers' backfill from `source`, given that system's client."""

    def __init__(
        self,
        source: Source,
        *,
        brightpearl: BrightpearlClient | BrightpearlPort | None = None,
        dataverse: DataverseClient | None = None,
        **options: Unpack[BackfillOptions],
    ) -> None:
        client = brightpearl if source == "brightpearl" else dataverse
        super().__init__(CUSTOMERS, source, client=client, **options)
