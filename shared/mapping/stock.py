"""Stock settings: which Brightpearl stock figure lands in Dynamics `bpi_availablestock` (issue 12 item 3).

They live in the `stock:` section of mappings/products.yaml (the product mapping file):

    stock:
      warehouses: [2, 3]          # Brightpearl warehouse ids summed; [] = every warehouse (`total`)
      measure: onHand             # onHand | inStock | allocated | inTransit (reference §8.1)
      write_quantityonhand: false # also write the same figure to Dynamics quantityonhand
      missing_product_retries: 3  # retries while Dynamics lacks the product (then left to later events)
      sweep_ids_per_run: 400      # the stock sweep's products per run (2 availability calls); 0: off

A file without the section, or no file, gives the defaults (every warehouse, onHand, no
quantityonhand, 3 retries, 400 swept a run). Problems are reported with the YAML path of the bad entry, e.g.
`stock.measure: ...`, in one `MappingError`, as the other mapping files' are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.mapping.config import MappingError, cached_per_file_version, parse_section, read_yaml_document
from shared.mapping.products_config import DEFAULT_PATH

Measure = Literal["onHand", "inStock", "allocated", "inTransit"]
SECTION = "stock"


class StockSettings(BaseModel):
    """The validated `stock:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warehouses: tuple[int, ...] = Field(
        (), description="Brightpearl warehouse ids to sum; empty: every warehouse (the `total` figure)"
    )
    measure: Measure = Field("onHand", description="which availability figure (reference §8.1)")
    write_quantityonhand: bool = Field(False, description="also write the figure to quantityonhand")
    missing_product_retries: int = Field(
        3,
        ge=0,
        le=6,  # below RETRY_MAX_ATTEMPTS (8): the record is left, never dead-lettered
        description="retries of a product Dynamics does not have yet (the products flow creates it)",
    )
    sweep_ids_per_run: int = Field(
        400,
        ge=0,
        le=800,  # 4 availability calls: 2 % of Brightpearl's 200 a minute at the default schedule
        description="products the stock sweep re-reads per run (200 per availability call); 0: off",
    )
    source: str = Field("<defaults>", exclude=True)


def parse_stock_settings(document: Any, source: str = "<memory>") -> StockSettings:
    """The `stock:` section of a parsed product mapping document (defaults when absent)."""
    settings = parse_section(document, source, SECTION, StockSettings, "warehouses, measure, ...")
    if settings is None:
        return StockSettings(source=source)
    problems = [
        f"{SECTION}.warehouses[{i}]: {w} is not a Brightpearl warehouse id (a positive integer)"
        for i, w in enumerate(settings.warehouses)
        if w <= 0
    ]
    if len(set(settings.warehouses)) != len(settings.warehouses):
        problems.append(f"{SECTION}.warehouses: a warehouse is listed twice (it would be counted twice)")
    if problems:
        raise MappingError(source, problems)
    return settings


def read_stock_settings(path: str | Path | None = None) -> StockSettings:
    """The `stock:` section of a product mapping file, uncached; no file at all: the defaults."""
    file = Path(path) if path is not None else DEFAULT_PATH
    if not file.exists() and file.resolve() == DEFAULT_PATH.resolve():
        return StockSettings()  # a deployment without a product mapping file
    return parse_stock_settings(read_yaml_document(file), str(file))


_load_stock_settings = cached_per_file_version(read_stock_settings, DEFAULT_PATH)


def load_stock_settings(path: str | Path | None = None) -> StockSettings:
    """The validated stock settings (default mappings/products.yaml), cached per file version."""
    return _load_stock_settings(path)
