"""Canonical product: the system-neutral shape a Brightpearl product takes on its way to Dynamics.

Text values are cleaned (trimmed, whitespace collapsed) by the model itself; the translators
in shared/mapping/products.py do the checks that need the mapping (SKU length against
Dynamics `productnumber`, units) and report problems as issues naming the field, never the
value.

Top-level attributes that ownership rules in mappings/products.yaml refer to are the *field
groups* (`PRODUCT_FIELD_GROUPS`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from shared.model.ids import SystemIds
from shared.quality.normalise import clean_text
from shared.systems import System

CleanStr = Annotated[str | None, BeforeValidator(clean_text)]


def _in_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must carry a time zone offset")
    return value.astimezone(dt.UTC) if value is not None else None


UtcTime = Annotated[dt.datetime | None, AfterValidator(_in_utc)]

# live / archived / destroyed: Brightpearl's lifecycle (destroyed = deleted there, kept Retired in
# Dynamics). draft: a Dynamics product not yet published (Dataverse reads only).
ProductStatus = Literal["live", "archived", "destroyed", "draft"]

# What each status becomes in Dynamics (statecode, statuscode): reference dataverse-api.md §10.7.
ACTIVE = (0, 1)
RETIRED = (1, 2)
DRAFT = (2, 0)
DATAVERSE_STATE: dict[ProductStatus, tuple[int, int]] = {
    "live": ACTIVE,
    "archived": RETIRED,
    "destroyed": RETIRED,
    "draft": DRAFT,
}

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Variation(BaseModel):
    """One option of a variant, e.g. Colour = Red (Brightpearl `variations[]`)."""

    model_config = _FROZEN

    option: Annotated[str, BeforeValidator(clean_text)]
    value: Annotated[str, BeforeValidator(clean_text)]


class ProductIds(SystemIds):
    """The product's ids: Brightpearl product id, Dataverse productid."""


class Product(BaseModel):
    """A sellable item: one Brightpearl product (a variant is a product), one Dynamics product."""

    model_config = _FROZEN

    sku: CleanStr = Field(None, description="Brightpearl identity.sku, Dynamics productnumber")
    name: CleanStr = None
    description: CleanStr = Field(None, description="the text the mapping chose for the description")
    brand: CleanStr = Field(None, description="brand name (mapping brands) or Brightpearl brandId")
    category: CleanStr = Field(None, description="category name (mapping categories) or code")
    stock_tracked: bool = False
    status: ProductStatus = "live"
    unit: CleanStr = Field(None, description="Dynamics unit name (of the mapping's unit group)")
    unit_group: CleanStr = Field(None, description="Dynamics unit group name")
    price_list: CleanStr = Field(None, description="Dynamics default price list name")
    quantity_decimals: int = Field(0, ge=0, le=5)
    variations: tuple[Variation, ...] = ()
    group_id: str | None = Field(None, description="Brightpearl productGroupId (variants of one item)")
    bundle: bool = False
    ids: ProductIds = ProductIds()
    modified_at: UtcTime = Field(None, description="last change in the source system (UTC)")
    source_system: System | None = None

    @property
    def dataverse_state(self) -> tuple[int, int]:
        """(statecode, statuscode) the Dynamics product should have."""
        return DATAVERSE_STATE[self.status]


# Field groups ownership rules name (mappings/products.yaml ownership.groups).
PRODUCT_FIELD_GROUPS: tuple[str, ...] = ("sku", "name", "description", "unit", "price_list", "status")
