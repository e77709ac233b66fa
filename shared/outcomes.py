"""What a flow decides for each message: completed, retry later, or dead-letter (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.resilience import Action, classify


@dataclass(frozen=True)
class Completed:
    """Done (synced, or nothing to do). `note` is for the log, e.g. 'echo suppressed'."""

    note: str | None = None


@dataclass(frozen=True)
class RetryLater:
    """A transient failure: try again later. `delay` is the server's own hint in seconds."""

    reason: str
    error: str
    delay: float | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A permanent failure an operator must fix. `description` names system, record and fix."""

    reason: str
    description: str


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
