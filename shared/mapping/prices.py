"""Price list settings: which Brightpearl price lists become Dynamics price lists (issue 12 item 2).

They live in the `price_lists:` section of mappings/products.yaml (the product mapping file):

    price_lists:
      export_cost: false            # the Cost (BUY) list(s) are exported only when true
      lists:                        # Brightpearl price list id or name -> what to do with it
        2: {export: true}
        "Trade GBP": {export: true, dynamics_name: "Trade"}
        "Retail EUR": true          # shorthand for {export: true}

Only the lists named here (and exported) become Dynamics price lists; a BUY list needs
`export_cost: true` as well (named or not). A file without the section, or no file, exports
no price list. Problems are reported with the YAML path of the bad entry, e.g.
`price_lists.lists.Trade GBP.dynamics_name: ...`, in one `MappingError`, as the other
mapping files' are. Which Brightpearl list a name means is only known at run time (the
flow reads the lists from Brightpearl); `select` does that matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.mapping.config import MappingError, cached_per_file_version, parse_section, read_yaml_document
from shared.mapping.products_config import DEFAULT_PATH

SECTION = "price_lists"
PRICELEVEL_NAME_MAX = 100  # Dynamics pricelevel.name (reference dataverse-api.md §10.9)
COST_TYPE = "BUY"  # Brightpearl priceListTypeCode of the Cost list (reference §7.3)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceListEntry(_Strict):
    """What to do with one Brightpearl price list."""

    export: bool = Field(True, description="export this list to Dynamics")
    dynamics_name: str | None = Field(
        None,
        min_length=1,
        max_length=PRICELEVEL_NAME_MAX,
        description="the Dynamics price list's name (default: the Brightpearl list's name)",
    )


class BrightpearlPriceList(Protocol):
    """What `select` needs of a Brightpearl price list (shared/brightpearl/models.py PriceList)."""

    @property
    def id(self) -> int: ...

    @property
    def display_name(self) -> str | None: ...

    @property
    def currency_code(self) -> str | None: ...

    @property
    def price_list_type_code(self) -> str | None: ...


@dataclass(frozen=True)
class SelectedList:
    """A Brightpearl price list the mapping exports, and the Dynamics name it gets."""

    id: int
    name: str  # the Brightpearl list's name
    currency: str  # ISO code
    dynamics_name: str
    cost: bool  # a BUY list (exported because export_cost is true)


class PriceSettings(_Strict):
    """The validated `price_lists:` section."""

    export_cost: bool = Field(False, description="export the Cost (BUY) price list(s) too")
    lists: dict[int | str, PriceListEntry] = Field(
        default_factory=dict, description="Brightpearl price list id or name -> export, Dynamics name"
    )
    source: str = Field("<defaults>", exclude=True)

    @field_validator("lists", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """`name: true` is `name: {export: true}`."""
        if isinstance(value, dict):
            return {k: {"export": v} if isinstance(v, bool) else v for k, v in value.items()}
        return value

    def entry_for(self, price_list: BrightpearlPriceList) -> PriceListEntry | None:
        """The entry naming this list, by id (a number, or digits) or by name (case-insensitive)."""
        name = (price_list.display_name or "").casefold()
        for key, entry in self.lists.items():
            if _is_id(key) and int(key) == price_list.id:
                return entry
        for key, entry in self.lists.items():
            if not _is_id(key) and name and str(key).casefold() == name:
                return entry
        return None

    def select(self, price_lists: Sequence[BrightpearlPriceList]) -> tuple[list[SelectedList], list[str]]:
        """The exported lists among Brightpearl's, and notes on entries that matched nothing or
        were not exported (a BUY list without export_cost) for the log."""
        chosen: list[SelectedList] = []
        notes: list[str] = []
        matched: set[int | str] = set()
        for pl in price_lists:
            entry = self.entry_for(pl)
            if entry is not None:
                matched.update(k for k, e in self.lists.items() if e is entry)
            cost = (pl.price_list_type_code or "").upper() == COST_TYPE
            if cost and not self.export_cost:
                if entry is not None and entry.export:
                    notes.append(
                        f"{SECTION}.lists: Brightpearl price list {pl.id} is a Cost (BUY) list; it is "
                        f"exported only with {SECTION}.export_cost: true"
                    )
                continue
            if not cost and (entry is None or not entry.export):
                continue
            if cost and entry is not None and not entry.export:
                continue
            name = pl.display_name or f"Brightpearl price list {pl.id}"
            wanted = entry.dynamics_name if entry is not None and entry.dynamics_name else name
            chosen.append(
                SelectedList(
                    pl.id, name, (pl.currency_code or "").upper(), wanted[:PRICELEVEL_NAME_MAX], cost
                )
            )
        for key in self.lists:
            if key not in matched:
                notes.append(f"{SECTION}.lists.{key}: Brightpearl has no price list with this id or name")
        return chosen, notes


def _is_id(key: int | str) -> bool:
    return isinstance(key, int) or str(key).isdigit()


def _semantic_problems(s: PriceSettings) -> list[str]:
    problems: list[str] = []
    for key in s.lists:
        if _is_id(key) and int(key) < 0:
            problems.append(f"{SECTION}.lists.{key}: a price list id is a whole number (0 or more)")
        elif not _is_id(key) and not str(key).strip():
            problems.append(f"{SECTION}.lists: a price list name is empty")
    seen: dict[str, int | str] = {}
    for key, entry in s.lists.items():
        if entry.dynamics_name is None:
            continue
        folded = entry.dynamics_name.casefold()
        if folded in seen:
            problems.append(
                f"{SECTION}.lists.{key}.dynamics_name: {entry.dynamics_name!r} is also the Dynamics name "
                f"of {SECTION}.lists.{seen[folded]}; two lists cannot share one Dynamics price list"
            )
        seen.setdefault(folded, key)
    return problems


def parse_price_settings(document: Any, source: str = "<memory>") -> PriceSettings:
    """The `price_lists:` section of a parsed product mapping document (defaults when absent)."""
    settings = parse_section(document, source, SECTION, PriceSettings, "export_cost, lists", _key_path)
    if settings is None:
        return PriceSettings(source=source)
    problems = _semantic_problems(settings)
    if problems:
        raise MappingError(source, problems)
    return settings


def _key_path(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """A pydantic location with dict keys as path parts (`lists.2.export`, not `lists[2]`), and
    without the union branch names pydantic adds for `int | str` keys."""
    return tuple(str(p) for p in loc if p not in ("int", "str", "[key]"))


def read_price_settings(path: str | Path | None = None) -> PriceSettings:
    """The `price_lists:` section of a product mapping file, uncached; no file at all: the defaults."""
    file = Path(path) if path is not None else DEFAULT_PATH
    if not file.exists() and file.resolve() == DEFAULT_PATH.resolve():
        return PriceSettings()
    return parse_price_settings(read_yaml_document(file), str(file))


_load_price_settings = cached_per_file_version(read_price_settings, DEFAULT_PATH)


def load_price_settings(path: str | Path | None = None) -> PriceSettings:
    """The validated price list settings (default mappings/products.yaml), cached per file version."""
    return _load_price_settings(path)
