"""Both schemas and sampled records, read through the clients in bulk.

Brightpearl: the entity's `custom-field-meta-data` (one GET); records: the first `sample` ids
of the entity's search (one page) and one GET per 200 ids with `includeOptional=customFields`.
Dataverse: `EntityDefinitions(LogicalName='t')` with its Attributes (one GET) plus one cast GET
per type with details (String, Memo: MaxLength; Picklist: the options); records: one page of
`sample` rows selecting the key column and the candidate columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import BrightpearlNotFound
from shared.dataverse.client import DataverseClient
from shared.dataverse.schema import METADATA_HEADERS, entity_path
from shared.suggest.fields import FieldInfo, brightpearl_fields, dataverse_fields

Records = list[tuple[str | None, dict[str, Any]]]


@dataclass(frozen=True)
class EntitySource:
    """Where one entity's schema and records live on both sides."""

    name: str  # customer, product, order
    mapping_entity: str  # the registry's entity whose mapping file it is
    brightpearl_meta: str  # custom-field-meta-data path
    brightpearl_search: str  # the search giving record ids
    brightpearl_id_column: str
    brightpearl_get: str  # GET by id set ({ids})
    brightpearl_id_field: str  # the id in a GET item
    dataverse_table: str
    dataverse_set: str
    dataverse_key: str  # the column holding the Brightpearl id
    custom_fields_mapped: bool  # the mapping file has a custom_fields section


SOURCES: dict[str, EntitySource] = {
    "customer": EntitySource(
        "customer",
        "customers",
        "/contact-service/customer/custom-field-meta-data",
        "/contact-service/contact-search",
        "contactId",
        "/contact-service/contact/{ids}",
        "contactId",
        "contact",
        "contacts",
        "bpi_brightpearlid",
        True,
    ),
    "product": EntitySource(
        "product",
        "products",
        "/product-service/product/custom-field-meta-data",
        "/product-service/product-search",
        "productId",
        "/product-service/product/{ids}",
        "id",
        "product",
        "products",
        "bpi_brightpearlid",
        False,
    ),
    "order": EntitySource(
        "order",
        "orders",
        "/order-service/sale/custom-field-meta-data",
        "/order-service/order-search",
        "orderId",
        "/order-service/order/{ids}",
        "id",
        "salesorder",
        "salesorders",
        "bpi_brightpearlid",
        False,
    ),
}


def source(entity: str) -> EntitySource:
    try:
        return SOURCES[entity]
    except KeyError:
        raise ValueError(f"--entity {entity!r}: one of {', '.join(SOURCES)}") from None


def brightpearl_schema(bp: BrightpearlClient, src: EntitySource) -> list[FieldInfo]:
    """The entity's Brightpearl custom fields ([] when it defines none: 404)."""
    return brightpearl_fields(x for x in bp.get_all(src.brightpearl_meta) if isinstance(x, dict))


def dataverse_schema(dv: DataverseClient, table: str) -> list[FieldInfo]:
    definition = dv.request(
        "GET",
        entity_path(table),
        params={
            "$select": "LogicalName",
            "$expand": "Attributes($select=LogicalName,AttributeType,IsCustomAttribute,DisplayName)",
        },
        headers=METADATA_HEADERS,
    ).json()
    attributes = [a for a in definition.get("Attributes") or [] if isinstance(a, dict)]
    details: dict[str, dict[str, Any]] = {}
    for cast, params in (
        ("StringAttributeMetadata", {"$select": "LogicalName,MaxLength"}),
        ("MemoAttributeMetadata", {"$select": "LogicalName,MaxLength"}),
        ("PicklistAttributeMetadata", {"$select": "LogicalName", "$expand": "OptionSet($select=Options)"}),
    ):
        rows = dv.request(
            "GET",
            f"{entity_path(table)}/Attributes/Microsoft.Dynamics.CRM.{cast}",
            params=params,
            headers=METADATA_HEADERS,
        ).json()
        for row in rows.get("value") or []:
            details[str(row.get("LogicalName"))] = row
    return dataverse_fields(attributes, details)


def brightpearl_records(bp: BrightpearlClient, src: EntitySource, sample: int) -> Records:
    """Up to `sample` records with their custom fields: (Brightpearl id, {code: raw value})."""
    ids: list[int] = []
    for row in bp.search(src.brightpearl_search, columns=[src.brightpearl_id_column], page_size=sample):
        ids.append(int(row[src.brightpearl_id_column]))
        if len(ids) >= sample:
            break
    if not ids:
        return []
    try:
        items = bp.get_by_ids(src.brightpearl_get, ids, params={"includeOptional": "customFields"})
    except BrightpearlNotFound:
        return []
    return [
        (str(item.get(src.brightpearl_id_field)), dict(item.get("customFields") or {}))
        for item in items
        if isinstance(item, dict)
    ]


def dataverse_records(dv: DataverseClient, src: EntitySource, columns: Iterable[str], sample: int) -> Records:
    """Up to `sample` rows: (the Brightpearl id they carry or None, {column: value})."""
    select = sorted({src.dataverse_key, *columns})
    out: Records = []
    for page in dv.pages(src.dataverse_set, select=select, page_size=sample):
        for record in page.records:
            key = record.get(src.dataverse_key)
            out.append((str(key) if key not in (None, "") else None, dict(record.values)))
            if len(out) >= sample:
                return out
    return out
