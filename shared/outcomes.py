"""What a flow decides for each message: completed, retry later, or dead-letter (DESIGN §6).

Plain data: the settlement adapter (shared.bus.settlement) applies these, and
shared.resilience.outcome_for_error makes them from errors (so the bus package never imports
the error classification, which itself names the bus's errors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


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
