"""What a flow decides for each message: completed, retry later, or dead-letter (DESIGN §6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.resilience import Action, classify


@dataclass(frozen=True)
class Completed:
    """Done (synced, or nothing to do). `note` is for the log, e.g. 'echo suppressed'."""

    note: str | None = None


@dataclass(frozen=True)
class RetryLater:
    """A transient failure: try again later. `delay` is the server's own hint in seconds.

    `waiting`: nothing failed, the message waits on another worker (e.g. its creation claim
    on the same record). Such a retry does not spend the retry budget (the copy keeps its
    attempt number) up to the settlement's total-wait bound; `delay` is then the longest
    worth waiting (e.g. until the other worker's lease runs out).
    """

    reason: str
    error: str
    delay: float | None = None
    waiting: bool = False


@dataclass(frozen=True)
class DeadLetter:
    """A permanent failure an operator must fix. `description` names system, record and fix."""

    reason: str
    description: str
    # Called when the dead-letter call itself fails (e.g. the message lock was lost): rolls
    # back what the flow recorded expecting the dead letter to exist (the ledger's "already
    # dead-lettered" key), so the redelivered message is dead-lettered then, not completed.
    undo: Callable[[], None] | None = field(default=None, compare=False, repr=False)


Outcome = Completed | RetryLater | DeadLetter


def outcome_for_error(exc: BaseException, what: str) -> Outcome:
    """Turn an expected error into an outcome through shared.resilience; re-raise unknown ones.

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
