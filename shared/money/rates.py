"""Exchange rates: the rate between two currencies on a date, from Brightpearl or Dataverse.

`RateSource.rate(from_code, to_code, on)` is the factor that turns an amount in `from_code` into
`to_code` (amount x rate); `convert` applies it and quantises the result to the target
currency's precision (ROUND_HALF_EVEN). A rate that is not there raises `RateMissing`
(shared/money/errors.py): retryable, then dead-lettered naming the pair and the date; never
guessed. Two sources, chosen by the EXCHANGE_RATE_SOURCE setting (or a mapping file):

- `brightpearl`: the account's exchange rates (`GET /accounting-service/exchange-rate`: every
  non-base currency's rates with `rateActiveFrom`, newest first; the base currency is always 1),
  its currencies (`GET /accounting-service/currency-search`: id, code, `isDefault` = the base)
  and the base currency of `GET /integration-service/account-configuration`. The rate of a date
  is the latest one active on or before that date (UTC), so a rate entered later does not
  rewrite history. Rates are stored to 6 decimal places (Brightpearl's own rounding).
- `dataverse`: `transactioncurrency.exchangerate`, each currency's rate against the
  organization's base currency (`organization.basecurrencyid`; reference dataverse-api.md
  §10.13). Dataverse keeps one current rate per currency and no history, so the rate in force
  when a transaction is first converted is the one used (and recorded by the caller).

Both sources quote a currency's rate as units of it per one unit of their base currency
(base amount = amount / rate, as Dataverse's `_base` columns and Brightpearl's order `baseNet`),
so rate(X -> Y) = rate(Y) / rate(X). The tables are read once and kept `max_age` seconds; a miss
re-reads them once (a rate just entered is found without waiting for the cache).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from shared.money.errors import BaseCurrencyUnknown, RateMissing

RateSourceName = Literal["brightpearl", "dataverse"]
RATE_SOURCES: tuple[RateSourceName, ...] = ("brightpearl", "dataverse")
RATE_PLACES = 12  # decimal places of a cross rate (Dataverse keeps record rates to 12)

EXCHANGE_RATES = "/accounting-service/exchange-rate"
CURRENCY_SEARCH = "/accounting-service/currency-search"
ACCOUNT_CONFIGURATION = "/integration-service/account-configuration"

# ISO 4217 minor units of the currencies that do not have 2 (the default).
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_units(code: str) -> int:
    """Decimal places of an amount in currency `code` (ISO 4217; 2 unless listed)."""
    return MINOR_UNITS.get(code.strip().upper(), 2)


def quantize(amount: Decimal, places: int) -> Decimal:
    """`amount` rounded half-even to `places` decimal places."""
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def to_decimal(value: Any, what: str) -> Decimal:
    """A money or rate value as read (string or number) as Decimal; ValueError naming `what`."""
    try:
        out = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not out.is_finite():
        raise ValueError(f"{what} is not a finite number: {value!r}")
    return out


def currency_code(code: str) -> str:
    """An ISO currency code as compared: upper case, no blanks; ValueError when empty."""
    text = (code or "").strip().upper()
    if not text:
        raise ValueError("a currency code is required")
    return text


@dataclass(frozen=True)
class Conversion:
    """An amount converted: what it became, at which rate, from which source and date."""

    amount: Decimal  # in `to_code`, quantised to its precision
    rate: Decimal  # amount in from_code x rate = amount in to_code
    from_code: str
    to_code: str
    on: date
    source: str


class _NoRate(Exception):
    """The why of a missing rate, turned into RateMissing (with the pair) by `RateSource.rate`."""


@dataclass
class RateTable:
    """One source's rates as read: its base currency, and per currency code the rates with the
    date each is active from (newest first; one entry with date.min for an undated rate)."""

    base: str
    rates: dict[str, list[tuple[date, Decimal]]] = field(default_factory=dict)
    precision: dict[str, int] = field(default_factory=dict)
    read_at: float = 0.0

    def per_base(self, code: str, on: date, *, currencies: str) -> Decimal:
        if code == self.base:
            return Decimal(1)
        entries = self.rates.get(code)
        if entries is None:
            raise _NoRate(f"{code} is not one of the {currencies}")
        for active_from, rate in entries:
            if active_from <= on:
                return rate
        if not entries:
            raise _NoRate(f"{code} has no exchange rate")
        raise _NoRate(f"{code}'s first rate is active from {entries[-1][0].isoformat()}, after that date")


class RateSource(ABC):
    """Exchange rates of one source. Subclasses read the table (`load`); this class caches it,
    looks rates up by date, crosses two currencies through the base, and raises RateMissing."""

    name: str = ""  # "Brightpearl exchange rates" (messages)

    def __init__(
        self,
        *,
        max_age: float = 600.0,
        refresh_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age  # seconds a table read is used
        self.refresh_after = refresh_after  # a miss re-reads a table older than this
        self.clock = clock
        self._table: RateTable | None = None

    @abstractmethod
    def load(self) -> RateTable:
        """Read the base currency and every rate from the source."""

    @property
    @abstractmethod
    def currencies_label(self) -> str:
        """What a currency unknown to the source is not one of: "Brightpearl account's currencies"."""

    def table(self, *, fresh: bool = False) -> RateTable:
        now = self.clock()
        if fresh or self._table is None or now - self._table.read_at > self.max_age:
            table = self.load()
            table.read_at = now
            self._table = table
        return self._table

    def base_currency(self) -> str:
        """The source's base currency (ISO code)."""
        return self.table().base

    def precision(self, code: str) -> int:
        """Decimal places of an amount in `code`: the source's own figure, else ISO 4217."""
        code = currency_code(code)
        return self.table().precision.get(code, minor_units(code))

    def rate(self, from_code: str, to_code: str, on: date) -> Decimal:
        """The factor turning an amount in `from_code` into `to_code` on `on` (12 decimal places);
        1 for the same currency. RateMissing when either currency has no rate on that date."""
        source, target = currency_code(from_code), currency_code(to_code)
        if source == target:
            return Decimal(1)
        try:
            return self._cross(self.table(), source, target, on)
        except _NoRate as exc:
            missing = exc
        if self._table is not None and self.clock() - self._table.read_at >= self.refresh_after:
            try:  # a rate entered since the table was read: read it again (at most once a minute)
                return self._cross(self.table(fresh=True), source, target, on)
            except _NoRate as exc:
                missing = exc
        raise RateMissing(source, target, on, self.name, str(missing)) from None

    def _cross(self, table: RateTable, source: str, target: str, on: date) -> Decimal:
        what = self.currencies_label
        from_rate = table.per_base(source, on, currencies=what)
        to_rate = table.per_base(target, on, currencies=what)
        if from_rate <= 0 or to_rate <= 0:
            raise _NoRate(f"a rate of {source} or {target} is not positive")
        return quantize(to_rate / from_rate, RATE_PLACES).normalize() if to_rate != from_rate else Decimal(1)

    def convert(self, amount: Decimal, from_code: str, to_code: str, on: date) -> Conversion:
        """`amount` in `from_code` as `to_code` on `on`, quantised to `to_code`'s precision."""
        rate = self.rate(from_code, to_code, on)
        target = currency_code(to_code)
        return Conversion(
            amount=quantize(amount * rate, self.precision(target)),
            rate=rate,
            from_code=currency_code(from_code),
            to_code=target,
            on=on,
            source=self.name,
        )


# ---------------------------------------------------------------------------- Brightpearl
class BrightpearlRequests(Protocol):
    """The one Brightpearl call the rates need (BrightpearlPort.request)."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


def _utc_date(text: Any, what: str) -> date:
    """The UTC date of a Brightpearl time stamp ("2015-06-13T14:01:53.000+02:00")."""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} is not an ISO date-time: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).date()


def search_rows(response: Any) -> Iterator[dict[str, Any]]:
    """The rows of one `*-search` answer as dicts keyed by column name (reference §4.1)."""
    if not isinstance(response, Mapping):
        return
    meta = response.get("metaData") or {}
    names = [str(c.get("name")) for c in meta.get("columns") or [] if isinstance(c, Mapping)]
    for row in response.get("results") or []:
        yield dict(zip(names, row, strict=False))


class BrightpearlRates(RateSource):
    """Brightpearl's exchange rates (brightpearl-api.md §9: accounting reference data)."""

    name = "Brightpearl exchange rates"

    def __init__(self, client: BrightpearlRequests, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    @property
    def currencies_label(self) -> str:
        return "Brightpearl account's currencies"

    def load(self) -> RateTable:
        codes: dict[int, str] = {}
        default: str | None = None
        first = 1
        while True:  # an account has few currencies: one page, but page anyway
            answer = self.client.request(
                "GET", CURRENCY_SEARCH, params={"pageSize": 500, "firstResult": first}
            ).response
            rows = list(search_rows(answer))
            for row in rows:
                code = str(row.get("code") or "").strip().upper()
                if row.get("id") is None or not code:
                    continue
                codes[int(row["id"])] = code
                if str(row.get("isDefault")).lower() == "true":
                    default = code
            meta = answer.get("metaData") if isinstance(answer, Mapping) else None
            if not rows or not isinstance(meta, Mapping) or not meta.get("morePagesAvailable"):
                break
            first += len(rows)
        base = self._configured_base() or default or ""
        if not base:
            raise BaseCurrencyUnknown(
                "Brightpearl", "neither account-configuration nor currency-search names it"
            )
        table = RateTable(base=base)
        for code in codes.values():
            if code != base:
                table.rates.setdefault(code, [])
        entries = self.client.request("GET", EXCHANGE_RATES).response or []
        for item in entries if isinstance(entries, list) else []:
            rated = codes.get(int(item.get("currencyId") or 0))
            if rated is None or rated == base:
                continue
            active = _utc_date(item.get("rateActiveFrom"), "exchange-rate rateActiveFrom")
            table.rates[rated].append((active, to_decimal(item.get("rate"), "exchange-rate rate")))
        for rates in table.rates.values():
            rates.sort(key=lambda entry: entry[0], reverse=True)
        return table

    def _configured_base(self) -> str | None:
        """The account configuration's base currency code, if it names one."""
        config = self.client.request("GET", ACCOUNT_CONFIGURATION).response
        if not isinstance(config, Mapping):
            return None
        for key in ("baseCurrencyCode", "baseCurrency"):
            value = config.get(key)
            if isinstance(value, Mapping):
                value = value.get("code")
            if isinstance(value, str) and value.strip():
                return value.strip().upper()
        return None


# ---------------------------------------------------------------------------- Dataverse
class DataverseQueries(Protocol):
    """The one Dataverse call the rates need (DataversePort.query)."""

    def query(self, entity_set: str, **kwargs: Any) -> Iterable[Any]: ...


def _value(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    getter = getattr(record, "get", None)
    return getter(name) if callable(getter) else getattr(record, name, None)


class DataverseRates(RateSource):
    """Dataverse `transactioncurrency.exchangerate` against the organization's base currency
    (reference dataverse-api.md §10.13). One current rate per currency, whatever the date."""

    name = "Dataverse transactioncurrency exchange rates"

    def __init__(self, client: DataverseQueries, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    @property
    def currencies_label(self) -> str:
        return "Dataverse currencies (transactioncurrency)"

    def load(self) -> RateTable:
        rows = list(
            self.client.query(
                "transactioncurrencies",
                select=["transactioncurrencyid", "isocurrencycode", "exchangerate", "currencyprecision"],
            )
        )
        by_id = {str(_value(r, "transactioncurrencyid")).lower(): r for r in rows}
        orgs = list(self.client.query("organizations", select=["_basecurrencyid_value"]))
        base_id = str(_value(orgs[0], "_basecurrencyid_value") or "").lower() if orgs else ""
        base_row = by_id.get(base_id)
        if base_row is None:
            raise BaseCurrencyUnknown("Dataverse", "organization.basecurrencyid names no transactioncurrency")
        table = RateTable(base=str(_value(base_row, "isocurrencycode")).strip().upper())
        for row in rows:
            code = str(_value(row, "isocurrencycode") or "").strip().upper()
            if not code:
                continue
            precision = _value(row, "currencyprecision")
            if precision is not None:
                table.precision[code] = int(precision)
            if code != table.base and _value(row, "exchangerate") is not None:
                rate = to_decimal(_value(row, "exchangerate"), f"transactioncurrency {code} exchangerate")
                table.rates[code] = [(date.min, rate)]
        return table


class FixedRates(RateSource):
    """Rates given in code (tests, benchmarks): base currency and, per currency, (active from,
    rate) pairs, with the same date rule and crossing as the real sources."""

    name = "fixed exchange rates"

    def __init__(self, base: str, rates: Mapping[str, Iterable[tuple[date, Decimal]]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = currency_code(base)
        self.given = {currency_code(c): sorted(r, key=lambda e: e[0], reverse=True) for c, r in rates.items()}

    @property
    def currencies_label(self) -> str:
        return "fixed currencies"

    def load(self) -> RateTable:
        return RateTable(base=self.base, rates={c: list(r) for c, r in self.given.items()})


def rate_source(
    kind: str,
    *,
    brightpearl: BrightpearlRequests | None = None,
    dataverse: DataverseQueries | None = None,
    max_age: float = 600.0,
) -> RateSource:
    """The RateSource `kind` names ("brightpearl" | "dataverse") over the given client."""
    if kind == "brightpearl":
        if brightpearl is None:
            raise ValueError("the brightpearl rate source needs a Brightpearl client")
        return BrightpearlRates(brightpearl, max_age=max_age)
    if kind == "dataverse":
        if dataverse is None:
            raise ValueError("the dataverse rate source needs a Dataverse client")
        return DataverseRates(dataverse, max_age=max_age)
    raise ValueError(f"rate source must be one of {', '.join(RATE_SOURCES)}, not {kind!r}")


def rates_from_runtime(kind: str | None = None) -> RateSource:
    """The process's rate source: `kind`, else the EXCHANGE_RATE_SOURCE setting."""
    from shared import runtime

    chosen = kind or runtime.settings().customer_value.rate_source
    if chosen == "brightpearl":
        return rate_source(chosen, brightpearl=runtime.brightpearl())
    return rate_source(chosen, dataverse=runtime.dataverse())
