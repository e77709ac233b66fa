"""Timer triggers: 6-field NCRONTAB schedules (seconds first) evaluated with croniter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import azure.functions as func
from azure.functions.timer import TimerRequest
from croniter import croniter

from sandbox.host.config import HostConfigError


@dataclass(frozen=True)
class Schedule:
    """A validated NCRONTAB expression: {second} {minute} {hour} {day} {month} {day-of-week}."""

    expression: str

    @classmethod
    def parse(cls, expression: str, function_name: str) -> Schedule:
        fields = expression.split()
        if len(fields) != 6:
            raise HostConfigError(
                f"function {function_name!r}: schedule {expression!r} must be a 6-field NCRONTAB expression "
                "'{second} {minute} {hour} {day} {month} {day-of-week}'"
                " (TimeSpan schedules are not supported)"
            )
        if not croniter.is_valid(expression, second_at_beginning=True):
            raise HostConfigError(
                f"function {function_name!r}: schedule {expression!r} is not a valid NCRONTAB"
            )
        return cls(expression)

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (UTC)."""
        return croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)


def timer_request(
    *, past_due: bool, last: datetime | None, next_due: datetime, now: datetime
) -> func.TimerRequest:
    """A real func.TimerRequest as the worker builds it from the host's timer payload."""
    return TimerRequest(
        past_due=past_due,
        schedule_status={
            "Last": (last or datetime.min).isoformat(),
            "Next": next_due.isoformat(),
            "LastUpdated": now.isoformat(),
        },
        schedule={"AdjustForDST": True},
    )
