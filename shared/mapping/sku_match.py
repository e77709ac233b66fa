"""SKU matching: a Dynamics order line's product -> a Brightpearl product, on real catalogues.

The orders flow asks for the products its lines name that have no `product` link
(shared/flows/orders_to_brightpearl.py `_resolve_products`); `SkuMatcher.match` answers per
Dynamics SKU (`productnumber`), cheapest first, each stage only for what is still unmatched:

1. **exact**: `product-search?SKU=` (reference brightpearl-api.md §4.2), the SKU equal
   character for character: one call per distinct SKU of the batch;
2. **channel**: the SKU with the order channel's affixes (`sku_matching.channels`, the
   Brightpearl channel id of mappings/orders.yaml `brightpearl.channel_id`, else `default`)
   stripped and added, searched the same way: one call per distinct variant;
3. the **catalogue index**, read once per batch and only when something is left: product-search
   pages of 500 (productId, SKU, EAN, UPC, ISBN, productName; at most `catalogue_max_pages`).
   **normalised**: the SKUs compared after `normalise_sku` (case, whitespace, separators,
   leading zeros, the affixes); then **identifiers**: the Dynamics product's columns named in
   `sku_matching.identifiers` against Brightpearl's EAN, UPC, ISBN (as GTINs: digits, leading
   zeros ignored) and MPN, barcode (not product-search columns: read with the product GET,
   reference §7.1, 200 ids a call, only when a line carries one);
4. **fuzzy**: the best candidates by similarity of normalised SKUs and of names (rapidfuzz),
   at or above `fuzzy.threshold`. A candidate is never used: the order goes to the
   needs-review list with the candidates and their scores, as does a normalised SKU or an
   identifier that names several Brightpearl products. An operator's
   `syncctl review accept-sku <Dynamics product id> <Brightpearl product id>` writes the
   `product` link, so the next order matches by link.

Nothing matched and no candidate: the line is unknown (`UnknownSku`, as before).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from rapidfuzz import fuzz, process

Identifier = Literal["ean", "upc", "isbn", "mpn", "barcode"]
Method = Literal["link", "exact", "channel", "normalised", "ean", "upc", "isbn", "mpn", "barcode"]
SEARCH_COLUMNS = {"ean": "EAN", "upc": "UPC", "isbn": "ISBN"}  # identifier -> product-search column
GTINS = frozenset({"ean", "upc", "isbn"})  # compared as numbers (a UPC-A is an EAN-13 with a 0)
PAGE_SIZE = 500
CATALOGUE_COLUMNS = ["productId", "SKU", "productName", *SEARCH_COLUMNS.values()]
PRODUCTS_PER_GET = 200
COLUMN = r"^[a-z][a-z0-9_]{0,99}$"
DEFAULT_SEPARATORS = "-_./ "
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")
_WHITESPACE = re.compile(r"\s+")


class ProductReads(Protocol):
    """What matching reads from Brightpearl (the client and its fake have these)."""

    def search_products(
        self,
        *,
        sku: str | None = None,
        updated_since: Any = None,
        columns: list[str] | None = None,
        **filters: Any,
    ) -> Iterable[dict[str, Any]]: ...

    def get_by_ids(
        self, path: str, ids: Iterable[int], *, limit: int | None = 200, params: dict[str, Any] | None = None
    ) -> list[Any]: ...


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NormaliseRules(_Strict):
    """What `normalise_sku` ignores; each rule can be switched off."""

    enabled: bool = Field(True, description="false: no normalised matching at all")
    case: bool = Field(True, description="abc-1 = ABC-1")
    whitespace: bool = Field(True, description="'ABC 1 ' = 'ABC1'")
    separators: str = Field(
        DEFAULT_SEPARATORS, max_length=20, description="characters ignored ('' = none): ABC-001 = ABC001"
    )
    leading_zeros: bool = Field(
        True, description="leading zeros of each number: ABC-001 = ABC-1, 00123 = 123"
    )


DEFAULT_RULES = NormaliseRules()


class ChannelAffixes(_Strict):
    """Text a channel's Dynamics SKUs carry that Brightpearl's lack (strip) or lack (add)."""

    strip_prefixes: tuple[str, ...] = Field((), description="removed from the front of a Dynamics SKU")
    strip_suffixes: tuple[str, ...] = Field((), description="removed from the end of a Dynamics SKU")
    add_prefix: str = Field("", max_length=32, description="put before the Dynamics SKU")
    add_suffix: str = Field("", max_length=32, description="put after the Dynamics SKU")

    @field_validator("strip_prefixes", "strip_suffixes")
    @classmethod
    def _not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not v for v in value):
            raise ValueError("an affix to strip must not be empty")
        return value

    def variant(self, sku: str, *, fold: bool = False) -> str:
        """`sku` with the first matching prefix and suffix removed, then the added ones."""

        def same(a: str, b: str) -> bool:
            return a.casefold() == b.casefold() if fold else a == b

        for prefix in self.strip_prefixes:
            if len(sku) > len(prefix) and same(sku[: len(prefix)], prefix):
                sku = sku[len(prefix) :]
                break
        for suffix in self.strip_suffixes:
            if len(sku) > len(suffix) and same(sku[-len(suffix) :], suffix):
                sku = sku[: -len(suffix)]
                break
        return f"{self.add_prefix}{sku}{self.add_suffix}"

    @property
    def empty(self) -> bool:
        return not (self.strip_prefixes or self.strip_suffixes or self.add_prefix or self.add_suffix)


class FuzzySettings(_Strict):
    enabled: bool = Field(True, description="false: no candidates; an unmatched SKU is UnknownSku")
    threshold: float = Field(85.0, ge=50, le=100, description="lowest score (0-100) offered for review")
    max_candidates: int = Field(3, ge=1, le=10, description="candidates listed per SKU")


def _channel_key(key: str) -> str:
    if key != "default" and not (key.isdigit() and int(key) > 0):
        raise ValueError(f"{key!r} is neither 'default' nor a Brightpearl channel id (a positive number)")
    return key


def _column_name(column: str) -> str:
    if not re.match(COLUMN, column):
        raise ValueError(f"{column!r} is not a Dataverse column logical name (lower case, e.g. bpi_ean)")
    return column


def _as_text(key: Any) -> Any:
    """A YAML number key (`3:`) as the text of the channel id."""
    return str(key) if isinstance(key, int) and not isinstance(key, bool) else key


ChannelKey = Annotated[str, BeforeValidator(_as_text), AfterValidator(_channel_key)]
ColumnName = Annotated[str, AfterValidator(_column_name)]


class SkuMatching(_Strict):
    """`sku_matching:` of mappings/orders.yaml."""

    normalise: NormaliseRules = NormaliseRules()
    channels: dict[ChannelKey, ChannelAffixes] = Field(
        default_factory=dict, description="Brightpearl channel id (or default) -> its SKU affixes"
    )
    identifiers: dict[Identifier, ColumnName] = Field(
        default_factory=dict, description="Brightpearl identifier -> the Dynamics product column holding it"
    )
    fuzzy: FuzzySettings = FuzzySettings()
    catalogue_max_pages: int = Field(
        40, ge=0, le=400, description="product-search pages (500 products) read for the index; 0: none"
    )

    def affixes(self, channel: int | None) -> ChannelAffixes:
        """The affixes of the order's Brightpearl channel, else `default`, else none."""
        return self.channels.get(str(channel)) or self.channels.get("default") or ChannelAffixes()

    @property
    def needs_index(self) -> bool:
        return self.catalogue_max_pages > 0 and (
            self.normalise.enabled or bool(self.identifiers) or self.fuzzy.enabled
        )


def normalise_sku(value: str, rules: NormaliseRules = DEFAULT_RULES) -> str:
    """The SKU as matching compares it: Unicode compatibility form, outer whitespace gone, then
    (each rule on its own) upper case, no whitespace, no leading zeros in a number, no separators.
    Zeros go before separators, so `ABC-001` and `ABC001` both become `ABC1`."""
    text = unicodedata.normalize("NFKC", value).strip()
    if rules.case:
        text = text.casefold().upper()
    if rules.whitespace:
        text = _WHITESPACE.sub("", text)
    if rules.leading_zeros:
        text = _LEADING_ZEROS.sub("", text)
    if rules.separators:
        text = text.translate({ord(c): None for c in rules.separators})
    return text


def normalise_identifier(kind: str, value: str, rules: NormaliseRules = DEFAULT_RULES) -> str:
    """A GTIN (EAN, UPC, ISBN) as its digits without leading zeros (`012345678905` = the EAN-13
    `0012345678905`); an MPN or barcode as a SKU."""
    if kind in GTINS:
        digits = "".join(c for c in value if c.isdigit() or c in "Xx").upper()
        return digits.lstrip("0")
    return normalise_sku(value, rules)


@dataclass(frozen=True)
class ProductQuery:
    """One Dynamics product an order line names: its product number and, when the flow read them,
    its name and the identifier columns (`sku_matching.identifiers`) by Brightpearl name."""

    sku: str
    product_id: str | None = None  # Dataverse productid
    name: str | None = None
    identifiers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """A Brightpearl product that may be the one meant, and why (shown for review)."""

    product_id: int
    sku: str | None
    name: str | None
    score: float
    why: str

    def describe(self) -> str:
        return f"Brightpearl product {self.product_id} (SKU {self.sku!r}, {self.why} {self.score:.0f})"


@dataclass(frozen=True)
class SkuMatch:
    """The outcome for one Dynamics SKU: a Brightpearl product and how, else candidates for
    review, else nothing (unknown)."""

    sku: str
    product_id: int | None = None
    method: Method | None = None
    candidates: tuple[Candidate, ...] = ()
    note: str = ""  # e.g. the catalogue index was cut at catalogue_max_pages

    @property
    def matched(self) -> bool:
        return self.product_id is not None

    @property
    def needs_review(self) -> bool:
        return self.product_id is None and bool(self.candidates)


@dataclass(frozen=True)
class _Entry:
    product_id: int
    sku: str | None
    name: str | None
    identifiers: Mapping[str, str]


class CatalogueIndex:
    """The Brightpearl catalogue as matching reads it: normalised SKU -> products, normalised
    identifier -> products, names for fuzzy matching."""

    def __init__(self, entries: Sequence[_Entry], rules: NormaliseRules, complete: bool) -> None:
        self.entries = {e.product_id: e for e in entries}
        self.rules = rules
        self.complete = complete
        self.by_sku: dict[str, list[int]] = {}
        self.by_identifier: dict[tuple[str, str], list[int]] = {}
        for e in entries:
            if e.sku:
                self.by_sku.setdefault(normalise_sku(e.sku, rules), []).append(e.product_id)
            for kind, value in e.identifiers.items():
                if value:
                    key = (kind, normalise_identifier(kind, value, rules))
                    self.by_identifier.setdefault(key, []).append(e.product_id)
        self._skus = {pid: normalise_sku(e.sku, rules) for pid, e in self.entries.items() if e.sku}
        self._names = {pid: e.name for pid, e in self.entries.items() if e.name}

    def add_identifiers(self, product_id: int, identifiers: Mapping[str, str]) -> None:
        for kind, value in identifiers.items():
            if value:
                key = (kind, normalise_identifier(kind, value, self.rules))
                self.by_identifier.setdefault(key, []).append(product_id)

    def candidate(self, product_id: int, score: float, why: str) -> Candidate:
        e = self.entries.get(product_id)
        return Candidate(product_id, e.sku if e else None, e.name if e else None, round(score, 1), why)

    def fuzzy(self, sku: str, name: str | None, settings: FuzzySettings) -> list[Candidate]:
        """The best candidates at or above the threshold, by SKU similarity (rapidfuzz ratio of
        the normalised SKUs) or name similarity (token sort ratio), the better of the two."""
        best: dict[int, tuple[float, str]] = {}
        limit, cutoff = settings.max_candidates, settings.threshold
        if sku and self._skus:
            for _, score, pid in process.extract(
                sku, self._skus, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff
            ):
                best[pid] = max(best.get(pid, (0.0, "")), (float(score), "SKU similarity"))
        if name and self._names:
            for _, score, pid in process.extract(
                name,
                self._names,
                scorer=fuzz.token_sort_ratio,
                processor=lambda s: s.casefold(),
                limit=limit,
                score_cutoff=cutoff,
            ):
                best[pid] = max(best.get(pid, (0.0, "")), (float(score), "name similarity"))
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
        return [self.candidate(pid, score, why) for pid, (score, why) in ranked]


class SkuMatcher:
    """Matches the Dynamics products of one batch; caches every answer for the batch."""

    def __init__(self, bp: ProductReads, settings: SkuMatching, *, channel: int | None = None) -> None:
        self.bp = bp
        self.settings = settings
        self.affixes = settings.affixes(channel)
        self._by_sku: dict[str, list[dict[str, Any]]] = {}  # exact SKU -> product-search rows
        self._index: CatalogueIndex | None = None
        self._identities_read = False
        self._rows: Iterator[dict[str, Any]] | None = None  # the catalogue read, resumable
        self._entries: list[_Entry] = []  # what it has read so far
        self._exact_index: dict[str, list[int]] | None = None  # SKU -> products, whole catalogue read

    def match(
        self,
        queries: Iterable[ProductQuery],
        *,
        enrich: Callable[[list[ProductQuery]], list[ProductQuery]] | None = None,
    ) -> dict[str, SkuMatch]:
        """The outcome per SKU of `queries` (the first query of a SKU stands for it). `enrich`
        adds names and identifiers to the queries the exact stages left (read only then)."""
        todo: dict[str, ProductQuery] = {}
        for q in queries:
            todo.setdefault(q.sku, q)
        out: dict[str, SkuMatch] = {}
        self._index_when_cheaper(len(todo))
        for sku in sorted(todo):
            found = self._exact(sku)
            if found is not None:
                out[sku] = SkuMatch(sku, found, "exact")
        rules = self.settings.normalise
        for sku in sorted(set(todo) - set(out)):
            variant = self.affixes.variant(sku)
            if not self.affixes.empty and variant != sku:
                found = self._exact(variant)
                if found is not None:
                    out[sku] = SkuMatch(sku, found, "channel")
        left = [todo[s] for s in sorted(set(todo) - set(out))]
        if not left or not self.settings.needs_index:
            return out | {q.sku: SkuMatch(q.sku) for q in left}
        if enrich is not None:
            left = enrich(left)
        index = self._catalogue()
        note = (
            ""
            if index.complete
            else (
                f"only the first {len(index.entries)} Brightpearl products were compared "
                "(sku_matching.catalogue_max_pages)"
            )
        )
        if any(kind not in GTINS for q in left for kind in q.identifiers):
            self._read_identities(index)
        for q in left:
            out[q.sku] = self._from_index(q, index, rules, note)
        return out

    # ------------------------------------------------------------------------------ stages
    def _exact(self, sku: str) -> int | None:
        """The Brightpearl product whose SKU is `sku` character for character: from the whole
        catalogue when it was read, else `product-search?SKU=` (once per SKU)."""
        if self._exact_index is not None:
            held = self._exact_index.get(sku)
            return min(held) if held else None
        if sku not in self._by_sku:
            self._by_sku[sku] = list(self.bp.search_products(sku=sku, columns=["productId", "SKU"]))
        exact = sorted(int(r["productId"]) for r in self._by_sku[sku] if r.get("SKU") == sku)
        return exact[0] if exact else None

    def _from_index(
        self, q: ProductQuery, index: CatalogueIndex, rules: NormaliseRules, note: str
    ) -> SkuMatch:
        key = normalise_sku(self.affixes.variant(q.sku, fold=rules.case), rules)
        if rules.enabled:
            hits = sorted(set(index.by_sku.get(key, [])))
            if len(hits) == 1:
                return SkuMatch(q.sku, hits[0], "normalised")
            if hits:
                why = "same normalised SKU as another"
                return SkuMatch(
                    q.sku, candidates=tuple(index.candidate(p, 100, why) for p in hits), note=note
                )
        for kind in self.settings.identifiers:
            value = q.identifiers.get(kind)
            if not value:
                continue
            hits = sorted(set(index.by_identifier.get((kind, normalise_identifier(kind, value, rules)), [])))
            if len(hits) == 1:
                return SkuMatch(q.sku, hits[0], kind)
            if hits:
                why = f"{kind.upper()} shared by several"
                return SkuMatch(
                    q.sku, candidates=tuple(index.candidate(p, 100, why) for p in hits), note=note
                )
        if self.settings.fuzzy.enabled:
            found = index.fuzzy(key, q.name, self.settings.fuzzy)
            if found:
                return SkuMatch(q.sku, candidates=tuple(found), note=note)
        return SkuMatch(q.sku, note=note)

    # ------------------------------------------------------------------------------ reading
    def _index_when_cheaper(self, skus: int) -> None:
        """With 3 or more SKUs to look up, read the catalogue's first page: when the whole
        catalogue takes fewer pages than there are SKUs (and no more than catalogue_max_pages),
        read it all and take the exact matches from it (pages instead of one look-up per SKU);
        else the read stops there and goes on only if the later stages need it (nothing is
        read twice)."""
        if skus < 3 or self.settings.catalogue_max_pages == 0:
            return
        rows = self.bp.search_products(columns=CATALOGUE_COLUMNS)
        self._rows = iter(rows)
        self._take(PAGE_SIZE)
        available = getattr(rows, "results_available", None)
        if available is None and isinstance(rows, Sized):
            available = len(rows)  # an answer in one piece (the in-memory fake)
        if available is None:
            return
        pages = max(1, -(-int(available) // PAGE_SIZE))
        if pages < skus and pages <= self.settings.catalogue_max_pages:
            index = self._catalogue()
            if index.complete:
                exact: dict[str, list[int]] = {}
                for e in index.entries.values():
                    if e.sku:
                        exact.setdefault(e.sku, []).append(e.product_id)
                self._exact_index = exact

    def _take(self, count: int) -> bool:
        """Read up to `count` more catalogue rows; False when the catalogue has no more."""
        if self._rows is None:
            self._rows = iter(self.bp.search_products(columns=CATALOGUE_COLUMNS))
        for _ in range(count):
            row = next(self._rows, None)
            if row is None:
                return False
            self._entries.append(
                _Entry(
                    int(row["productId"]),
                    _text(row.get("SKU")),
                    _text(row.get("productName")),
                    {k: str(row[c]) for k, c in SEARCH_COLUMNS.items() if _text(row.get(c))},
                )
            )
        return True

    def _catalogue(self) -> CatalogueIndex:
        """The catalogue index, read once per batch: product-search pages of 500, at most
        catalogue_max_pages of them."""
        if self._index is not None:
            return self._index
        limit = self.settings.catalogue_max_pages * PAGE_SIZE
        more = self._take(limit - len(self._entries)) if len(self._entries) < limit else True
        complete = not more or not self._take(1)  # one row past the limit: the catalogue goes on
        entries = self._entries[:limit]
        self._index = CatalogueIndex(entries, self.settings.normalise, complete)
        return self._index

    def _read_identities(self, index: CatalogueIndex) -> None:
        """MPN and barcode of the indexed products (product GET identity, reference §7.1)."""
        if self._identities_read:
            return
        self._identities_read = True
        wanted = [k for k in self.settings.identifiers if k not in GTINS]
        for chunk in _chunks(sorted(index.entries), PRODUCTS_PER_GET):
            for product in self.bp.get_by_ids(
                "/product-service/product/{ids}", list(chunk), limit=PRODUCTS_PER_GET
            ):
                identity = product.get("identity") or {}
                index.add_identifiers(
                    int(product["id"]), {k: str(identity[k]) for k in wanted if identity.get(k)}
                )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def dynamics_columns(settings: SkuMatching) -> list[str]:
    """The Dynamics product columns matching reads beside the product number: name and the
    identifier columns (`sku_matching.identifiers`)."""
    return ["name", *sorted(set(settings.identifiers.values()))]


def with_details(query: ProductQuery, row: Mapping[str, Any] | None, settings: SkuMatching) -> ProductQuery:
    """`query` with its Dynamics product's name and identifier values (`row`: the product's
    `dynamics_columns`), by Brightpearl identifier name."""
    if row is None:
        return query
    ids: dict[str, str] = {
        k: str(row[c]).strip() for k, c in settings.identifiers.items() if _text(row.get(c))
    }
    return ProductQuery(query.sku, query.product_id, _text(row.get("name")), ids)


def review_text(match: SkuMatch) -> str:
    """The candidates of a SKU for the needs-review description."""
    listed = "; ".join(c.describe() for c in match.candidates)
    return f"{listed}{f' ({match.note})' if match.note else ''}"
