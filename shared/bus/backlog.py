"""Waiting work per subscription: active, locked, scheduled, dead-lettered and deferred counts,
from the local bus or from Azure Service Bus (its management client's runtime properties).

`syncctl bus status` prints it, so convergence after an outage or a backfill can be watched
without opening the bus file or the portal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shared.bus.port import BusError


@dataclass(frozen=True)
class Backlog:
    """One subscription's counts. None = the backend does not report this figure.

    active: visible now, locked or not (Service Bus's ActiveMessageCount); locked: the part of
    `active` a receiver holds; scheduled: retry copies and other messages not visible yet.
    """

    topic: str
    subscription: str
    active: int
    locked: int | None
    scheduled: int | None
    dead_lettered: int
    deferred: int | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def local_backlog(bus: Any, targets: Sequence[tuple[str, str]]) -> list[Backlog]:
    """Counts of the local bus (exact, including locks and scheduled copies)."""
    rows = []
    for topic, subscription in targets:
        c = bus.counts(topic, subscription)
        rows.append(Backlog(topic, subscription, c.active, c.locked, c.scheduled, c.dead_letter, c.deferred))
    return rows


def servicebus_backlog(admin: Any, targets: Sequence[tuple[str, str]]) -> list[Backlog]:
    """Counts from a ServiceBusAdministrationClient (runtime properties).

    Service Bus reports scheduled messages per topic, not per subscription (our retry copies
    are scheduled on the topic and reach only the subscription named in replay_to), and does
    not report locked messages apart from active ones; those figures say so in `note`.
    """
    scheduled_by_topic: dict[str, int] = {}
    rows = []
    try:
        for topic, subscription in targets:
            if topic not in scheduled_by_topic:
                scheduled_by_topic[topic] = int(
                    admin.get_topic_runtime_properties(topic).scheduled_message_count
                )
            props = admin.get_subscription_runtime_properties(topic, subscription)
            rows.append(
                Backlog(
                    topic,
                    subscription,
                    active=int(props.active_message_count),
                    locked=None,
                    scheduled=None,
                    dead_lettered=int(props.dead_letter_message_count),
                    deferred=None,
                    note=f"topic {topic}: {scheduled_by_topic[topic]} scheduled; locked messages are "
                    "counted in active",
                )
            )
    except Exception as exc:  # azure.core errors: auth, not found, network
        raise BusError(f"cannot read Service Bus runtime properties: {type(exc).__name__}: {exc}") from exc
    return rows
