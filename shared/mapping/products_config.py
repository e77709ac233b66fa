"""The product mapping file (mappings/products.yaml): its schema, loading and validation.

`load_product_mapping()` reads the YAML, validates its structure with pydantic and then its
meaning (known field groups, a custom-field unit source with its values, options that exist
in Dataverse). Every problem is reported with the YAML path of the bad entry, e.g.
`units.values: needs units.custom_field (the Brightpearl custom field holding the unit)`, and
all problems are raised together in one `MappingError`, as the customer mapping's are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.mapping.config import (
    cached_per_file_version,
    read_yaml_document,
    validate_document,
)
from shared.model.product import PRODUCT_FIELD_GROUPS
from shared.quality.issues import IssueCode, QualityPolicy, Severity

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "mappings" / "products.yaml"

# Dynamics product column limits (reference dataverse-api.md §10.7).
PRODUCTNUMBER_MAX = 100
NAME_MAX = 100
DESCRIPTION_MAX = 2000
PRODUCT_TYPES = {1: "Sales Inventory", 2: "Miscellaneous Charges", 3: "Services", 4: "Flat Fees"}

ProductOwner = Literal["brightpearl", "dataverse"]
# Field groups a Dynamics edit can reach Brightpearl for (products-to-brightpearl, issue 12 item
# 5) when the mapping gives them to Dynamics, and the Brightpearl fields `description` can come from
# and so be written back to (brand, category and none cannot).
WRITE_BACK_GROUPS = ("description",)
WRITE_BACK_DESCRIPTIONS = {"description": "description", "short_description": "shortDescription"}
DescriptionSource = Literal["description", "short_description", "brand", "category", "none"]


def _product_severities() -> dict[str, dict[IssueCode, Severity]]:
    # a long name or description is cut to the column, not worth losing the product over
    return {
        "name": {IssueCode.VALUE_TOO_LONG: Severity.WARNING},
        "description": {IssueCode.VALUE_TOO_LONG: Severity.WARNING},
    }


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductDataverse(_Strict):
    key: str = Field(
        "bpi_brightpearlid", pattern=r"^[a-z][a-z0-9_]{0,99}$", description="alternate key (BP product id)"
    )
    match_on_productnumber: bool = Field(
        True, description="an unlinked product is matched to a Dynamics product of the same productnumber"
    )
    product_type: int = Field(1, description="producttypecode (1 Sales Inventory)")
    quantity_decimals: int = Field(0, ge=0, le=5, description="quantitydecimal (decimals supported)")


class ProductFields(_Strict):
    description: DescriptionSource = Field(
        "description",
        description="what Dynamics `description` receives: the channel description, the short "
        "description, the brand name, the category name, or nothing",
    )


class UnitGroup(_Strict):
    name: str = Field("Default Unit", min_length=1, max_length=200)
    default_unit: str = Field("Primary Unit", min_length=1, max_length=100)
    create_if_missing: bool = Field(
        True, description="create the unit group (and its default unit) when Dynamics lacks them"
    )


class UnitSettings(_Strict):
    custom_field: str | None = Field(
        None,
        pattern=r"^PCF_[A-Z0-9_]{1,60}$",
        description="Brightpearl product custom field holding the unit",
    )
    values: dict[str, str] = Field(
        default_factory=dict, description="that field's values -> Dynamics unit names (same name if absent)"
    )


class PriceListSettings(_Strict):
    default: str | None = Field(None, min_length=1, description="Dynamics price list set as default")


class ProductOwnership(_Strict):
    default: ProductOwner = "brightpearl"
    groups: dict[str, ProductOwner] = Field(default_factory=dict)

    def owner_of(self, group: str) -> ProductOwner:
        return self.groups.get(group, self.default)


class FamilySettings(_Strict):
    enabled: bool = Field(False, description="product families (Dynamics parent products): not built yet")


class ProductMapping(_Strict):
    """The validated contents of mappings/products.yaml."""

    version: Literal[1] = 1
    entity: Literal["product"] = "product"
    quality: QualityPolicy = QualityPolicy(field_severities=_product_severities())
    dataverse: ProductDataverse = ProductDataverse()
    fields: ProductFields = ProductFields()
    brands: dict[int, str] = Field(default_factory=dict, description="Brightpearl brandId -> brand name")
    categories: dict[str, str] = Field(default_factory=dict, description="category code -> name")
    unit_group: UnitGroup = UnitGroup()
    units: UnitSettings = UnitSettings()
    price_list: PriceListSettings = PriceListSettings()
    ownership: ProductOwnership = ProductOwnership()
    families: FamilySettings = FamilySettings()
    price_lists: Any = Field(None, description="validated by shared/mapping/prices.py (the prices flow)")
    stock: Any = Field(None, description="validated by shared/mapping/stock.py (the stock flow)")
    source: str = Field("<memory>", exclude=True)

    def write_back_groups(self) -> tuple[str, ...]:
        """The field groups Dynamics owns that products-to-brightpearl writes to Brightpearl; empty
        (the default, every group Brightpearl's) switches that flow and its webhook step off."""
        return tuple(g for g in WRITE_BACK_GROUPS if self.ownership.owner_of(g) == "dataverse")

    def unit_for(self, value: str | None) -> str:
        """The Dynamics unit name of a product's unit value (None: the default unit)."""
        if value is None:
            return self.unit_group.default_unit
        return self.units.values.get(value, value)


def _semantic_problems(m: ProductMapping) -> list[str]:
    problems: list[str] = []
    for group in m.ownership.groups:
        if group not in PRODUCT_FIELD_GROUPS:
            problems.append(
                f"ownership.groups.{group}: unknown field group {group!r} "
                f"(known: {', '.join(PRODUCT_FIELD_GROUPS)})"
            )
    if m.ownership.owner_of("sku") != "brightpearl":
        problems.append("ownership.groups.sku: the SKU is the match key and must stay owned by brightpearl")
    if "description" in m.write_back_groups() and m.fields.description not in WRITE_BACK_DESCRIPTIONS:
        problems.append(
            f"ownership.groups.description: dataverse needs fields.description description or "
            f"short_description (the Brightpearl field Dynamics edits are written to); "
            f"{m.fields.description} cannot be written back"
        )
    if m.dataverse.product_type not in PRODUCT_TYPES:
        problems.append(
            f"dataverse.product_type: {m.dataverse.product_type} is not an option of producttypecode "
            f"(options {sorted(PRODUCT_TYPES)})"
        )
    if not m.dataverse.key.startswith("bpi_"):
        problems.append(
            f"dataverse.key: {m.dataverse.key!r} must be an integration column (bpi_ prefix) with an "
            "alternate key (syncctl dataverse provision)"
        )
    if m.units.values and m.units.custom_field is None:
        problems.append(
            "units.values: needs units.custom_field (the Brightpearl custom field holding the unit)"
        )
    for value, unit in m.units.values.items():
        if not unit.strip():
            problems.append(f"units.values.{value}: the Dynamics unit name is empty")
    if m.families.enabled:
        problems.append(
            "families.enabled: product families are not supported yet; variations sync as separate "
            "products (docs/mapping.md, Products)"
        )
    if m.fields.description == "brand" and not m.brands:
        problems.append("fields.description: brand needs the brands value map (brandId: name)")
    return problems


def parse_product_mapping(data: Any, source: str = "<memory>") -> ProductMapping:
    """Validate an already-parsed YAML document (None: the defaults). Raises MappingError listing
    every problem."""
    return validate_document(ProductMapping, data, source, _semantic_problems)


def read_product_mapping(path: str | Path | None = None) -> ProductMapping:
    """Read and validate a product mapping file, uncached (syncctl mapping check)."""
    file = Path(path) if path is not None else DEFAULT_PATH
    return parse_product_mapping(read_yaml_document(file), str(file))


_load_product_mapping = cached_per_file_version(read_product_mapping, DEFAULT_PATH)


def load_product_mapping(path: str | Path | None = None) -> ProductMapping:
    """The validated product mapping (default mappings/products.yaml), cached per file version."""
    return _load_product_mapping(path)
