"""Products: Brightpearl product <-> canonical Product -> Dynamics product columns, hashes, decisions.

- `brightpearl_product_to_canonical`: a product GET item (reference brightpearl-api.md §7.1) as
  a canonical Product, with the checks the issue names (SKU empty or longer than Dynamics
  `productnumber`). Issues name the field (`identity.sku`), never the value.
- `dataverse_product_to_canonical`: a Dynamics product row read back, with its unit, unit
  group and price list named through the batch's `ProductCatalogue` (ids -> names).
- `product_hash`: what a side holds for a product (echo suppression, shared/sync/engine.py).
- `decide_brightpearl_write` (products-to-brightpearl, item 5): the Dynamics-owned field groups
  a Dynamics product holds that its Brightpearl product does not, as a product PUT body.
- `decide_product_write`: ownership merge (Brightpearl owns every group by default), unit
  resolution (`UnitNotResolved`) and hash comparison; the payload is the merged Product,
  turned into columns by `product_columns` once the catalogue ids are known.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from shared.mapping.brightpearl import parse_bp_time
from shared.mapping.dataverse import id_reference
from shared.mapping.decision import Verdict
from shared.mapping.products_config import (
    DESCRIPTION_MAX,
    NAME_MAX,
    PRODUCTNUMBER_MAX,
    WRITE_BACK_DESCRIPTIONS,
    ProductMapping,
)
from shared.mapping.translation import IssueLog, Translation
from shared.model.product import PRODUCT_FIELD_GROUPS, Product, ProductIds, ProductStatus, Variation
from shared.quality.issues import IssueCode, QualityIssue
from shared.quality.normalise import clean_text
from shared.systems import System

HASH_VERSION = "p1"  # bump when a projection changes
DATAVERSE_STATUS: dict[int, ProductStatus] = {0: "live", 1: "archived", 2: "draft", 3: "draft"}
BRIGHTPEARL_STATUS: dict[str, ProductStatus] = {"LIVE": "live", "ARCHIVED": "archived"}
PRODUCT_SELECT = [
    "productid",
    "productnumber",
    "name",
    "description",
    "quantitydecimal",
    "producttypecode",
    "statecode",
    "statuscode",
    "_defaultuomscheduleid_value",
    "_defaultuomid_value",
    "_pricelevelid_value",
    "modifiedon",
]


@dataclass(frozen=True)
class ProductCatalogue:
    """The Dynamics records every product of a batch refers to, resolved by name once per batch."""

    unit_group_id: str | None
    unit_group: str
    units: dict[str, str]  # uomid (lower case) -> unit name, of the unit group
    price_list_id: str | None = None
    price_list: str | None = None

    def unit_id(self, name: str | None) -> str | None:
        wanted = (name or "").casefold()
        return next((i for i, n in self.units.items() if n.casefold() == wanted), None)


# ------------------------------------------------------------------------------ Brightpearl
def _text(value: Any) -> str | None:
    if isinstance(value, dict):  # {"languageCode": "EN", "text": "...", "format": "HTML_FRAGMENT"}
        value = value.get("text")
    return clean_text(value)


def _cut(log: IssueLog, value: str | None, limit: int, field: str, canonical: str) -> str | None:
    """`value` within `limit` characters; longer is ValueTooLong (a warning cuts it)."""
    if value is None or len(value) <= limit:
        return value
    issue = log.add(
        IssueCode.VALUE_TOO_LONG, field, f"is longer than Dynamics' {limit} characters", canonical
    )
    return value if issue.fatal else value[:limit]


def _custom_value(record: dict[str, Any], code: str) -> str | None:
    raw = (record.get("customFields") or {}).get(code)
    if isinstance(raw, dict):  # a select field: {"id": 3, "value": "Box"}
        raw = raw.get("value")
    return clean_text(raw)


def brightpearl_product_to_canonical(record: dict[str, Any], mapping: ProductMapping) -> Translation[Product]:
    """A Brightpearl product GET item as a canonical Product (issues name fields, never values)."""
    record_id = str(record.get("id") or record.get("productId") or "") or None
    log = IssueLog(mapping.quality, "brightpearl", record_id)
    status = BRIGHTPEARL_STATUS.get(str(record.get("status") or "LIVE").upper(), "archived")
    if record.get("destroyed"):
        status = "destroyed"
    identity = record.get("identity") or {}
    sku = clean_text(identity.get("sku"))
    if status != "destroyed":  # a destroyed product is only retired: no SKU to check
        if not sku:
            log.add(
                IssueCode.INVALID_SKU, "identity.sku", "is empty (Dynamics productnumber needs one)", "sku"
            )
        elif len(sku) > PRODUCTNUMBER_MAX:
            log.add(
                IssueCode.INVALID_SKU,
                "identity.sku",
                f"is longer than Dynamics productnumber's {PRODUCTNUMBER_MAX} characters",
                "sku",
            )
    channels = record.get("salesChannels") or [{}]
    channel = channels[0] if isinstance(channels[0], dict) else {}
    name = _cut(log, _text(channel.get("productName")), NAME_MAX, "salesChannels[0].productName", "name")
    brand_id = record.get("brandId")
    brand = mapping.brands.get(int(brand_id)) if isinstance(brand_id, int) else None
    brand = brand or (str(brand_id) if brand_id not in (None, 0) else None)
    codes = [c.get("categoryCode") for c in channel.get("categories") or [] if isinstance(c, dict)]
    code = str(codes[0]) if codes and codes[0] is not None else None
    category = mapping.categories.get(code, code) if code is not None else None
    source = mapping.fields.description
    chosen = {
        "description": (_text(channel.get("description")), "salesChannels[0].description"),
        "short_description": (_text(channel.get("shortDescription")), "salesChannels[0].shortDescription"),
        "brand": (brand, "brandId"),
        "category": (category, "salesChannels[0].categories"),
        "none": (None, "description"),
    }[source]
    description = _cut(log, chosen[0], DESCRIPTION_MAX, chosen[1], "description")
    unit_value = _custom_value(record, mapping.units.custom_field) if mapping.units.custom_field else None
    variations = tuple(
        Variation(
            option=str(v.get("optionName") or v.get("optionId")),
            value=str(v.get("optionValue") or v.get("optionValueId")),
        )
        for v in record.get("variations") or []
        if isinstance(v, dict)
    )
    group_id = record.get("productGroupId")
    product = Product(
        sku=sku if sku and len(sku) <= PRODUCTNUMBER_MAX else None,
        name=name or sku,  # Dynamics needs a name: a product without one is named by its SKU
        description=description,
        brand=brand,
        category=category,
        stock_tracked=bool((record.get("stock") or {}).get("stockTracked")),
        status=status,
        unit=mapping.unit_for(unit_value),
        unit_group=mapping.unit_group.name,
        price_list=mapping.price_list.default,
        quantity_decimals=mapping.dataverse.quantity_decimals,
        variations=variations,
        group_id=str(group_id) if group_id not in (None, 0) else None,
        bundle=bool((record.get("composition") or {}).get("bundle")),
        ids=ProductIds(brightpearl=record_id),
        modified_at=parse_bp_time(record.get("updatedOn")),
        source_system="brightpearl",
    )
    return Translation(product, log.issues)


def unit_field(mapping: ProductMapping) -> str:
    """The field a product's unit comes from (named in UnitNotResolved issues)."""
    code = mapping.units.custom_field
    return f"customFields.{code}" if code else "unit_group.default_unit (mappings/products.yaml)"


# ------------------------------------------------------------------------------ Dataverse
def dataverse_product_to_canonical(
    row: dict[str, Any], mapping: ProductMapping, catalogue: ProductCatalogue | None
) -> Translation[Product]:
    """A Dynamics product row as a canonical Product (unit and price list named via `catalogue`)."""
    units = catalogue.units if catalogue is not None else {}
    group_id = str(row.get("_defaultuomscheduleid_value") or "").lower()
    price_list_id = str(row.get("_pricelevelid_value") or "").lower()
    in_group = catalogue is not None and group_id == (catalogue.unit_group_id or "").lower()
    product = Product(
        sku=row.get("productnumber"),
        name=row.get("name"),
        description=row.get("description"),
        status=DATAVERSE_STATUS.get(int(row.get("statecode") or 0), "live"),
        unit=units.get(str(row.get("_defaultuomid_value") or "").lower()) if in_group else None,
        unit_group=catalogue.unit_group if in_group and catalogue is not None else None,
        price_list=(
            catalogue.price_list
            if catalogue is not None and price_list_id and price_list_id == (catalogue.price_list_id or "")
            else None
        ),
        quantity_decimals=int(row.get("quantitydecimal") or 0),
        ids=ProductIds(brightpearl=row.get(mapping.dataverse.key), dataverse=row.get("productid")),
        modified_at=parse_bp_time(row.get("modifiedon")),
        source_system="dataverse",
    )
    return Translation(product, [])


# ------------------------------------------------------------------------------ hashes
def _dataverse_state(product: Product) -> str:
    return {"live": "active", "draft": "draft"}.get(product.status, "retired")


def project_product(product: Product, system: System) -> dict[str, Any]:
    """The canonical fields `system` holds for `product`, as it would store them."""
    if system == "dataverse":
        return {
            "sku": product.sku,
            "name": (product.name or "")[:NAME_MAX] or None,
            "description": (product.description or "")[:DESCRIPTION_MAX] or None,
            "unit_group": product.unit_group,
            "unit": product.unit,
            "price_list": product.price_list,
            "quantity_decimals": product.quantity_decimals,
            "state": _dataverse_state(product),
        }
    return product.model_dump(mode="json", exclude={"ids", "modified_at", "source_system"})


def product_hash(product: Product, system: System) -> str:
    """Stable hash of what `system` would hold for this product (hex, version-prefixed)."""
    text = json.dumps(project_product(product, system), sort_keys=True, separators=(",", ":"), default=str)
    return f"{HASH_VERSION}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


# ------------------------------------------------------------------------------ decisions
@dataclass
class ProductDecision(Verdict):
    """What to write for one product (the engine's Decision)."""

    payload: Product  # the merged product Dynamics should hold
    desired_hash: str
    current_hash: str | None
    issues: list[QualityIssue] = field(default_factory=list)
    kept: tuple[str, ...] = ()  # field groups kept from Dynamics (owned there)

    @property
    def should_write(self) -> bool:
        return not self.fatal and self.current_hash != self.desired_hash


def merge_product(
    source: Product, current: Product | None, mapping: ProductMapping
) -> tuple[Product, tuple[str, ...]]:
    """The product Dynamics should hold: groups Dynamics owns keep its values; a destroyed
    product keeps everything Dynamics has and only changes state."""
    if current is None:
        return source, ()
    if source.status == "destroyed":
        return current.model_copy(update={"status": "destroyed"}), tuple(
            g for g in PRODUCT_FIELD_GROUPS if g != "status"
        )
    kept = tuple(
        g for g in PRODUCT_FIELD_GROUPS if mapping.ownership.owner_of(g) == "dataverse" and g != "sku"
    )
    updates = {g: getattr(current, g) for g in kept}
    if "unit" in kept:
        updates["unit_group"] = current.unit_group
    return source.model_copy(update=updates), kept


def decide_product_write(
    source: Product,
    current: Product | None,
    mapping: ProductMapping,
    catalogue: ProductCatalogue,
    *,
    record_id: str,
    source_issues: list[QualityIssue] | None = None,
) -> ProductDecision:
    """Merge by ownership, check the unit resolves in the catalogue, compare hashes."""
    merged, kept = merge_product(source, current, mapping)
    issues = list(source_issues or [])
    if merged.status != "destroyed" and catalogue.unit_id(merged.unit) is None:
        log = IssueLog(mapping.quality, "brightpearl", record_id)
        if catalogue.unit_group_id is None:  # the group itself is missing (and may not be created)
            field = "unit_group.name (mappings/products.yaml)"
            problem = f"Dynamics has no unit group named {catalogue.unit_group!r}"
        else:
            field = unit_field(mapping)
            problem = f"names a unit that Dynamics unit group {catalogue.unit_group!r} does not have"
        log.add(IssueCode.UNIT_NOT_RESOLVED, field, problem, "unit")
        issues += log.issues
    return ProductDecision(
        payload=merged,
        desired_hash=product_hash(merged, "dataverse"),
        current_hash=product_hash(current, "dataverse") if current is not None else None,
        issues=issues,
        kept=kept,
    )


def product_columns(product: Product, mapping: ProductMapping, catalogue: ProductCatalogue) -> dict[str, Any]:
    """The Dynamics product columns for `product` (no key, no state: those are the flow's)."""
    columns: dict[str, Any] = {
        "productnumber": product.sku,
        "name": (product.name or "")[:NAME_MAX] or product.sku,
        "description": (product.description or "")[:DESCRIPTION_MAX] or None,
        "producttypecode": mapping.dataverse.product_type,
        "quantitydecimal": product.quantity_decimals,
    }
    unit_id = catalogue.unit_id(product.unit)
    if catalogue.unit_group_id and unit_id:
        group = catalogue.unit_group_id
        columns["defaultuomscheduleid@odata.bind"] = "/" + id_reference("uomschedules", group)
        columns["defaultuomid@odata.bind"] = "/" + id_reference("uoms", unit_id)
    if product.price_list and catalogue.price_list_id:
        columns["pricelevelid@odata.bind"] = "/" + id_reference("pricelevels", catalogue.price_list_id)
    return columns


def column_delta(columns: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
    """The columns whose value differs from `row` (lookups compared by the GUID they point at)."""
    if row is None:
        return columns
    out: dict[str, Any] = {}
    for name, value in columns.items():
        if name.endswith("@odata.bind"):
            current = str(row.get(f"_{name.removesuffix('@odata.bind')}_value") or "").lower()
            if current and str(value).lower().endswith(f"({current})"):
                continue
        elif row.get(name) == value:
            continue
        out[name] = value
    return out


def fatal_issue(
    mapping: ProductMapping, record_id: str, code: IssueCode, field_name: str, text: str
) -> QualityIssue:
    """One issue for `record_id` (as the mapping's policy rates it)."""
    log = IssueLog(mapping.quality, "brightpearl", record_id)
    return log.add(code, field_name, text, field_name)


# ------------------------------------------------------------------------------ Dynamics -> Brightpearl
def write_back_columns(mapping: ProductMapping) -> list[str]:
    """The Dynamics product columns whose edits products-to-brightpearl writes to Brightpearl (the
    Update webhook step's filtering attributes); none while Brightpearl owns every group, so
    `syncctl webhooks register` registers no product step (the flow is off)."""
    return ["description"] if "description" in mapping.write_back_groups() else []


@dataclass
class BrightpearlProductDecision(Verdict):
    """What to write to one Brightpearl product (products-to-brightpearl's Decision)."""

    payload: dict[str, Any]  # the product PUT body (reference §7.2); empty: nothing to write
    desired_hash: str  # of the Brightpearl product once the PUT is applied
    groups: tuple[str, ...] = ()  # the field groups sent
    issues: list[QualityIssue] = field(default_factory=list)

    @property
    def should_write(self) -> bool:
        return bool(self.payload)


def _same_text(dynamics: str | None, brightpearl: str | None, limit: int) -> bool:
    """Equal once cleaned; Dynamics holding the first `limit` characters of a longer Brightpearl
    text (the products flow cut it to the column) is no edit either."""
    ours, theirs = clean_text(dynamics) or "", clean_text(brightpearl) or ""
    return ours == theirs or (len(theirs) > limit and ours == theirs[:limit])


def decide_brightpearl_write(
    dynamics: Product, record: dict[str, Any], mapping: ProductMapping
) -> BrightpearlProductDecision:
    """The Dynamics-owned groups (`mapping.write_back_groups()`) whose Dynamics value differs from
    the Brightpearl product `record` (a fresh GET), as a PUT body; the other groups never leave
    Dynamics. The channel list is sent whole (a PUT replaces it) with only the owned text changed,
    keeping its language and format."""
    channels = [dict(c) for c in record.get("salesChannels") or [] if isinstance(c, dict)]
    channel = channels[0] if channels else {"salesChannelName": "Brightpearl"}
    changed: list[str] = []
    if "description" in mapping.write_back_groups():
        key = WRITE_BACK_DESCRIPTIONS[mapping.fields.description]
        if not _same_text(dynamics.description, _text(channel.get(key)), DESCRIPTION_MAX):
            old, text = channel.get(key), dynamics.description or ""
            if isinstance(old, dict) or (old is None and key == "description"):  # §7.1 text object
                shape = old if isinstance(old, dict) else {"languageCode": "EN", "format": "PLAINTEXT"}
                channel[key] = {**shape, "text": text}
            else:
                channel[key] = text
            changed.append("description")
    if not channels:
        channels = [channel]
    after = {**record, "salesChannels": channels} if changed else record
    return BrightpearlProductDecision(
        payload={"salesChannels": channels} if changed else {},
        desired_hash=product_hash(brightpearl_product_to_canonical(after, mapping).value, "brightpearl"),
        groups=tuple(changed),
    )
