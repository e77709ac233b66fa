"""The in-call retry loop of both API clients, on tenacity.

A client's attempt raises `Retryable(error, delay)` when repeating it is safe (the client
decides: idempotent calls, connections never opened, throttling); `call_with_retries` waits
`delay` (the server's own signal, e.g. Retry-After) or else the client's backoff, repeats at
most `max_retries` times, and then raises the client's own error, never a tenacity one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

T = TypeVar("T")


class Retryable(Exception):
    """Raised by an attempt: `error` may be repeated, after `delay` seconds if given."""

    def __init__(self, error: Exception, delay: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.delay = delay


def call_with_retries(
    attempt: Callable[[int], T],
    *,
    max_retries: int,
    backoff: Callable[[RetryCallState], float],
    sleep: Callable[[float], None],
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> T:
    """`attempt(n)` for n = 1, 2, ... until it returns or raises anything but `Retryable`.

    `backoff` (a tenacity wait strategy) gives the wait when the `Retryable` has no delay;
    `before_sleep` sees each retry (the failed attempt's `Retryable` in `state.outcome`).
    """

    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, Retryable) and failure.delay is not None:
            return failure.delay
        return backoff(state)

    retrying = Retrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait,
        retry=retry_if_exception_type(Retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        for tried in retrying:
            with tried:
                return attempt(tried.retry_state.attempt_number)
    except Retryable as exhausted:
        raise exhausted.error from exhausted.error.__cause__ or exhausted.__cause__
    raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover
