"""Why a conversion could not be made: no rate for a currency pair on a date (retryable)."""

from __future__ import annotations

from datetime import date


class RateMissing(Exception):
    """No exchange rate from `from_code` to `to_code` for `on` in the configured source.

    Retryable (shared/resilience.py): the rate may be entered later. After the usual attempts
    the message is dead-lettered with this text, which names the pair, the date and the source,
    so an operator knows which rate to add. A rate is never guessed."""

    def __init__(self, from_code: str, to_code: str, on: date, source: str, why: str) -> None:
        self.from_code = from_code
        self.to_code = to_code
        self.on = on
        self.source = source
        super().__init__(
            f"no exchange rate {from_code}->{to_code} on {on.isoformat()} in {source}: {why}; "
            f"add the rate there, then resubmit"
        )


class BaseCurrencyMismatch(RuntimeError):
    """Figures would be written in one base currency into a Dynamics organization using another."""

    def __init__(self, configured: str, actual: str, where: str) -> None:
        self.configured, self.actual = configured, actual
        super().__init__(
            f"{where} says the Dynamics base currency is {configured}, but the organization's is {actual}: "
            f"set base_currency: {actual} (nothing was written)"
        )


class BaseCurrencyUnknown(RuntimeError):
    """The rate source does not say what its base currency is (configuration, not a rate)."""

    def __init__(self, system: str, why: str) -> None:
        super().__init__(f"{system} base currency unknown: {why}")
