"""Error classification and retry timing: the one place that decides what a failure means.

Every exception a flow can meet resolves, through the single table `RULES`, to an action
(retry, retry after the server's throttle period, refresh credentials then retry, dead-letter,
ignore) and an operator-facing reason code with a suggested fix. Flows never guess; the
settlement adapter (shared.bus.settlement) applies the result. Reason codes are documented
in docs/operations.md.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any

import httpx

from shared.brightpearl import errors as bp
from shared.bus.port import BusError, MessageTooLargeError
from shared.dataverse import errors as dv
from shared.events import EnvelopeError
from shared.money.errors import BaseCurrencyUnknown, RateMissing
from shared.outcomes import Completed, DeadLetter, Outcome, RetryLater
from shared.store.errors import StoreConflictError, StoreError


class Action(enum.Enum):
    RETRY = "retry"
    RETRY_AFTER_THROTTLE = "retry_after_throttle"
    REFRESH_AUTH_THEN_RETRY = "refresh_auth_then_retry"
    DEAD_LETTER = "dead_letter"
    IGNORE = "ignore"

    @property
    def transient(self) -> bool:
        return self in (Action.RETRY, Action.RETRY_AFTER_THROTTLE, Action.REFRESH_AUTH_THEN_RETRY)


@dataclass(frozen=True)
class Rule:
    error: type[BaseException]
    action: Action
    reason: str
    fix: str


@dataclass(frozen=True)
class Classification:
    action: Action
    reason: str
    fix: str
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        return self.action.transient


def _ladder_rules(
    api: str, errors: ModuleType, *, names: str, throttled: str, rejected: str
) -> tuple[Rule, ...]:
    """The rules of one API's error ladder, the same for every API: `<api>Throttled`,
    `<api>AuthError`, `<api>NotFound`, `<api>ValidationError`, `<api>Unavailable` and last the
    root `<api>Error`, all in `errors` (shared/<api>/errors.py). `throttled` and `rejected` are
    the fixes of a throttle and of rejected credentials; `names` is what a rejected write's
    message names. Refinements of these classes need their own rules, before these."""

    def rule(suffix: str, action: Action, reason: str, fix: str) -> Rule:
        return Rule(getattr(errors, api + suffix), action, api + reason, fix)

    return (
        rule("Throttled", Action.RETRY_AFTER_THROTTLE, "Throttled", throttled),
        rule("AuthError", Action.REFRESH_AUTH_THEN_RETRY, "AuthFailed", rejected),
        rule("NotFound", Action.IGNORE, "RecordMissing",
             f"The {api} record no longer exists; nothing to sync (audited)."),
        rule("ValidationError", Action.DEAD_LETTER, "Rejected",
             f"{api} rejected the write; its message names the {names}. Fix the source record "
             "and resubmit."),
        rule("Unavailable", Action.RETRY, "Unavailable",
             f"{api} answered 5xx or timed out; retried automatically."),
        rule("Error", Action.DEAD_LETTER, "ProtocolError",
             f"{api} answered in an unexpected way. Inspect the description and report it."),
    )


# The table. More specific classes first: the first rule whose class matches wins.
RULES: tuple[Rule, ...] = (
    # --- messages and infrastructure ------------------------------------------------------
    Rule(EnvelopeError, Action.DEAD_LETTER, "MalformedMessage",
         "The message body is not a valid change notice. Inspect it; if it was edited by hand "
         "in Service Bus Explorer, fix the JSON and resubmit."),
    Rule(MessageTooLargeError, Action.DEAD_LETTER, "MessageTooLarge",
         "A message exceeded the Service Bus size limit. Report it: notices carry ids only."),
    Rule(BusError, Action.RETRY, "BusUnavailable",
         "Service Bus could not be reached; retried automatically. Check the namespace and "
         "the app's Service Bus roles if it persists."),
    Rule(StoreConflictError, Action.RETRY, "StateConflict",
         "Another worker changed the same state row; retried automatically."),
    Rule(StoreError, Action.RETRY, "StateStoreUnavailable",
         "Table Storage could not be reached; retried automatically. Check the storage "
         "account and the app's Table Data Contributor role if it persists."),
    # --- refinements of the APIs' error ladders (before the ladders) ---------------------
    Rule(bp.BrightpearlPreconditionFailed, Action.RETRY, "BrightpearlStaleVersion",
         "The Brightpearl record changed while we wrote it (412); retried with a fresh read."),
    Rule(dv.DataverseReferenceMissing, Action.RETRY, "DataverseReferenceMissing",
         "A record this write refers to (lookup) does not exist in Dataverse yet; retried "
         "automatically. If it persists, sync the referenced record first."),
    Rule(dv.DataverseConcurrencyError, Action.RETRY, "DataverseConcurrencyConflict",
         "The Dataverse record changed between read and write (ETag mismatch); retried "
         "automatically with the current version."),
    Rule(dv.DataverseSchemaMissing, Action.RETRY, "DataverseSchemaMissing",
         "The Dataverse environment lacks a column or alternate key the mapping uses (the "
         "description names it); no record is at fault. Run `syncctl dataverse provision` "
         "(then `syncctl dataverse check`): waiting messages retry and sync by themselves."),
    Rule(dv.DataverseForeignLink, Action.DEAD_LETTER, "DataverseForeignLink",
         "A paging or delta link pointed outside DATAVERSE_URL's service root (another host); "
         "it was not followed, so the token was not sent there. Check DATAVERSE_URL; if it "
         "changed on purpose, delete the stale dataverse-delta-<table> cursor, then resubmit."),
    # --- currency conversion (shared/money) ------------------------------------------------
    Rule(RateMissing, Action.RETRY, "RateMissing",
         "No exchange rate for the currency pair on the transaction's date in the configured "
         "source (the description names the pair, the date and the source); retried, never "
         "guessed. Add the rate in that source (Brightpearl exchange rates or the Dataverse "
         "currency), then resubmit the dead letter."),
    Rule(BaseCurrencyUnknown, Action.RETRY, "BaseCurrencyUnknown",
         "The rate source does not name its base currency (Brightpearl account configuration / "
         "currency-search isDefault, or Dataverse organization.basecurrencyid); retried. Fix the "
         "source's configuration or EXCHANGE_RATE_SOURCE."),
    # --- the APIs' error ladders (shared/brightpearl/errors.py, shared/dataverse/errors.py) -
    *_ladder_rules(
        "Brightpearl", bp, names="field",
        throttled="Brightpearl's per-minute request cap was reached; retried after its throttle period.",
        rejected="Brightpearl rejected the credentials. Check BRIGHTPEARL_* settings and the Key Vault "
        "token secrets, then resubmit.",
    ),
    *_ladder_rules(
        "Dataverse", dv, names="column",
        throttled="Dataverse service protection limits were hit; retried after Retry-After.",
        rejected="Dataverse rejected the token. Check DATAVERSE_* settings, the app registration "
        "secret and the application user's security role, then resubmit.",
    ),
    # --- transport, last -------------------------------------------------------------------
    Rule(httpx.TimeoutException, Action.RETRY, "NetworkTimeout",
         "A call timed out; retried automatically."),
    Rule(httpx.TransportError, Action.RETRY, "NetworkError",
         "A connection failed; retried automatically."),
    Rule(TimeoutError, Action.RETRY, "NetworkTimeout", "A call timed out; retried automatically."),
    Rule(ConnectionError, Action.RETRY, "NetworkError", "A connection failed; retried automatically."),
)


def classify(exc: BaseException) -> Classification | None:
    """The table's verdict on `exc`, or None for an unexpected error (a bug)."""
    for rule in RULES:
        if isinstance(exc, rule.error):
            retry_after = getattr(exc, "retry_after", None)
            return Classification(
                action=rule.action,
                reason=rule.reason,
                fix=rule.fix,
                retry_after=float(retry_after) if retry_after is not None else None,
            )
    return None


# Reasons that mean "the service (or the way to it) is down or out of capacity", not "this
# record is wrong": after an outage, or once a backlog has drained the APIs' request budgets,
# every record waiting on one of these should go again soon, so their delay is capped low
# (BackoffPolicy.outage_max_delay) and they give up by time, not by attempt count. Throttles
# belong here: a backlog of thousands keeps Brightpearl's 200 requests a minute busy for many
# minutes, and no record should be dead-lettered, or wait half an hour, for being in it.
AVAILABILITY_REASONS = frozenset(
    {
        "BrightpearlThrottled",
        "DataverseThrottled",
        "BrightpearlUnavailable",
        "DataverseUnavailable",
        "NetworkError",
        "NetworkTimeout",
        "StateStoreUnavailable",
        "BusUnavailable",
    }
)


def outcome_for_error(exc: BaseException, what: str) -> Outcome:
    """Turn an expected error into an outcome through `classify`; re-raise unknown ones.

    `what` names the record for the operator, e.g. "Brightpearl contact 207".
    """
    verdict = classify(exc)
    if verdict is None:
        raise exc
    if verdict.action is Action.IGNORE:
        return Completed(note=f"{verdict.reason}: {what}")
    if verdict.transient:
        return RetryLater(reason=verdict.reason, error=f"{what}: {exc}", delay=verdict.retry_after)
    return DeadLetter(reason=verdict.reason, description=f"{what}: {exc}. {verdict.fix}")


def _setting(retry: Any, name: str) -> Any:
    return getattr(retry, name) if hasattr(retry, name) else getattr(retry, f"{name}_seconds")


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff with jitter, capped; a server-given delay is honoured.

    Availability errors (AVAILABILITY_REASONS) are capped at `outage_max_delay` instead of
    `max_delay`, so once the API is back every waiting record tries again within about that
    long (plus jitter) instead of after a delay that grew to many minutes during the outage;
    and they are exhausted only after `max_attempts` *and* `outage_give_up` seconds since the
    change was observed, so a long outage does not dead-letter everything it touched.
    """

    max_attempts: int = 8
    base_delay: float = 15.0
    max_delay: float = 1800.0
    jitter_ratio: float = 0.2
    outage_max_delay: float = 60.0
    outage_give_up: float = 6 * 3600.0

    @classmethod
    def from_settings(cls, retry: Any) -> BackoffPolicy:
        """From RetrySettings (RETRY_* app settings): each field from the setting of its name,
        a duration from the one that adds `_seconds` (base_delay: RETRY_BASE_DELAY_SECONDS)."""
        return cls(**{f.name: _setting(retry, f.name) for f in fields(cls)})

    def delay(
        self,
        attempt: int,
        server_delay: float | None = None,
        rng: random.Random | None = None,
        *,
        reason: str | None = None,
    ) -> float:
        """Seconds to wait before attempt `attempt + 1`, given `attempt` has just failed.

        Grows as base * 2^(attempt-1), each value spread by +/- jitter_ratio, never above
        max_delay; never shorter than the server's own delay (Retry-After, throttle period),
        even when that exceeds the cap. For an availability error the growth stops at
        outage_max_delay and the jitter spreads around that value (so waiting records do not
        all come back in the same second).
        """
        rng = rng or random.Random()
        exponential = self.base_delay * 2.0 ** max(attempt - 1, 0)
        if reason in AVAILABILITY_REASONS:
            capped = min(exponential, self.outage_max_delay)
            spread = capped * self.jitter_ratio
            delay = max(capped + rng.uniform(-spread, spread), 0.0)
        else:
            spread = exponential * self.jitter_ratio
            jittered = exponential + rng.uniform(-spread, spread)
            delay = min(max(jittered, 0.0), self.max_delay)
        if server_delay is not None and server_delay > delay:
            delay = server_delay
        return delay

    def exhausted(self, attempt: int, *, reason: str | None = None, waiting: float | None = None) -> bool:
        """True when a retry would be one too many. `waiting`: seconds since the change was
        observed; an availability error needs that to reach outage_give_up as well."""
        if attempt < self.max_attempts:
            return False
        if reason in AVAILABILITY_REASONS and waiting is not None:
            return waiting >= self.outage_give_up
        return True
