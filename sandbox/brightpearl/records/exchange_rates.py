"""Exchange rates of the account's currencies (accounting-service, reference brightpearl-api.md §9).

`GET /accounting-service/exchange-rate`: every non-base currency's rates, ordered by currency
ascending and `rateActiveFrom` descending; the base currency has none (its rate is always 1).
`POST /accounting-service/currency/{id}/exchange-rate` adds a rate active from a date: today's
is stamped "now", a future one midnight UTC of its date, a past one is refused; the base
currency is refused. `PUT` of the same path replaces the initial (epoch) rate. Rates are
rounded to 6 decimal places. A rate is units of the currency per one unit of the base currency.

Seeded like a "single exchange rate" account: an epoch rate per non-base currency
(EUR 1.17, USD 1.27 against GBP). The admin surface (`PUT /_sandbox/exchange-rates`) replaces
the whole table, past dates included, so tests can hold the rates of any day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sandbox.brightpearl.errors import bad
from sandbox.brightpearl.records.core import StateCore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEEDED_RATES = {"EUR": "1.17", "USD": "1.27"}


def _rate(value: Any) -> Decimal:
    try:
        rate = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise bad(f"rate {value!r} is not a number", "ACCE-001") from None
    if not rate.is_finite() or rate <= 0:
        raise bad(f"rate {value!r} must be positive", "ACCE-001")
    return rate.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


def _when(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"rateActiveFrom {value!r} is not an ISO-8601 date", "ACCE-002") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class ExchangeRateStore(StateCore):
    currencies: dict[int, dict[str, Any]]
    base_currency_id: int
    exchange_rates: list[dict[str, Any]]  # {currencyId, rateActiveFrom (UTC datetime), rate, addedById}

    def _reset_exchange_rates(self) -> None:
        self.exchange_rates = [
            {
                "currencyId": cid,
                "rateActiveFrom": EPOCH,
                "rate": _rate(SEEDED_RATES[c["code"]]),
                "addedById": 4,
            }
            for cid, c in sorted(self.currencies.items())
            if cid != self.base_currency_id and c["code"] in SEEDED_RATES
        ]

    def _rate_currency(self, currency_id: int) -> int:
        if currency_id not in self.currencies:
            raise bad(f"currency {currency_id} is not one of the account's currencies", "ACCE-003")
        if currency_id == self.base_currency_id:
            raise bad("the base currency's exchange rate is always 1 and cannot be set", "ACCE-004")
        return currency_id

    def list_exchange_rates(self) -> list[dict[str, Any]]:
        with self.lock:
            ordered = sorted(self.exchange_rates, key=lambda r: r["rateActiveFrom"], reverse=True)
            ordered.sort(key=lambda r: r["currencyId"])
            return [
                {
                    "currencyId": r["currencyId"],
                    "rateActiveFrom": r["rateActiveFrom"].isoformat(timespec="milliseconds"),
                    "rate": float(r["rate"]),
                    "addedById": r["addedById"],
                }
                for r in ordered
            ]

    def add_exchange_rate(self, currency_id: int, body: dict[str, Any]) -> int:
        """Exchange Rate POST: a rate active from today (now) or a future date (midnight UTC)."""
        with self.lock:
            self._rate_currency(currency_id)
            day = _when(body.get("rateActiveFrom")).astimezone(UTC).date()
            now = self.now()
            if day < now.date():
                raise bad("exchange rates for dates before the current date cannot be added", "ACCE-005")
            active = now if day == now.date() else datetime.combine(day, time(), UTC)
            self.exchange_rates.append(
                {
                    "currencyId": currency_id,
                    "rateActiveFrom": active,
                    "rate": _rate(body.get("rate")),
                    "addedById": 4,
                }
            )
            return 1

    def update_exchange_rate(self, currency_id: int, body: dict[str, Any]) -> int:
        """Exchange Rate PUT ("single exchange rate"): only the initial (epoch) rate changes."""
        with self.lock:
            self._rate_currency(currency_id)
            rate = _rate(body.get("rate"))
            rows = [
                r
                for r in self.exchange_rates
                if r["currencyId"] == currency_id and r["rateActiveFrom"] == EPOCH
            ]
            for row in rows:
                row["rate"] = rate
            if not rows:
                self.exchange_rates.append(
                    {"currencyId": currency_id, "rateActiveFrom": EPOCH, "rate": rate, "addedById": 4}
                )
            return 1

    def replace_exchange_rates(self, rates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Admin: the whole table, any dates: [{currencyCode | currencyId, rateActiveFrom, rate}]."""
        with self.lock:
            by_code = {c["code"]: cid for cid, c in self.currencies.items()}
            table = []
            for item in rates:
                cid = item.get("currencyId") or by_code.get(str(item.get("currencyCode", "")).upper())
                if cid is None:
                    raise bad(f"unknown currency in {item!r}", "ACCE-003")
                when = item.get("rateActiveFrom")
                active = EPOCH if when is None else _when(when).astimezone(UTC)
                if isinstance(when, str) and len(when) == 10:  # a date: midnight UTC of that day
                    active = datetime.combine(date.fromisoformat(when), time(), UTC)
                table.append(
                    {
                        "currencyId": self._rate_currency(int(cid)),
                        "rateActiveFrom": active,
                        "rate": _rate(item.get("rate")),
                        "addedById": 4,
                    }
                )
            self.exchange_rates = table
        return self.list_exchange_rates()

    def currency_rows(self) -> list[dict[str, Any]]:
        """currency-search rows (id, title, code, symbol, exchangeRate = the latest, isDefault)."""
        with self.lock:
            rows = []
            for cid, c in sorted(self.currencies.items()):
                latest = max(
                    (r for r in self.exchange_rates if r["currencyId"] == cid),
                    key=lambda r: r["rateActiveFrom"],
                    default=None,
                )
                rate = Decimal(1) if cid == self.base_currency_id else (latest or {}).get("rate")
                rows.append(
                    {
                        "id": cid,
                        "title": c.get("title") or c["code"],
                        "code": c["code"],
                        "symbol": c.get("symbol", ""),
                        "exchangeRate": None if rate is None else f"{rate:.6f}",
                        "isDefault": cid == self.base_currency_id,
                        "exchangeRateVarianceNominalCode": c.get("exchangeRateVarianceNominalCode"),
                    }
                )
            return rows
