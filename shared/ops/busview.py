"""The messages waiting on the bus, as operators see them: ids, reasons and times, never contents.

`bus_messages(settings, topology, targets, ...)` lists, per (topic, subscription), the
dead-lettered messages, the scheduled ones (retry copies and postponed work not yet due, with
the time they become due) and the active ones, optionally only those naming some record ids.

- local bus (sandbox): all three, read without locking anything;
- Azure Service Bus: dead letters (shared.bus.deadletters) and a peek of the subscription,
  which returns active and scheduled messages alike (a scheduled one carries its due time).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from shared.bus.port import BusError, message_body
from shared.bus.topology import Topology
from shared.events import PROP_ATTEMPT, PROP_ENTITY, Envelope, EnvelopeError
from shared.settings import BusSettings

Queue = Literal["dead-lettered", "scheduled", "active"]
QUEUES: tuple[Queue, ...] = ("dead-lettered", "scheduled", "active")


@dataclass(frozen=True)
class BusMessage:
    """One message on the bus: where it is, what it names and (dead letters) why it stopped."""

    queue: Queue
    topic: str
    subscription: str
    message_id: str
    sequence_number: int
    entity: str | None
    ids: tuple[str, ...]
    attempt: int | None
    enqueued: datetime | None
    due: datetime | None = None  # scheduled messages: when they become visible
    reason: str | None = None
    description: str | None = None
    origin: str | None = None  # the notice's origin: webhook, poller, backfill, resubmit

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "subscription": f"{self.topic}/{self.subscription}",
            "messageId": self.message_id,
            "sequence": self.sequence_number,
            "entity": self.entity,
            "ids": list(self.ids),
            "attempt": self.attempt,
            "enqueued": self.enqueued.isoformat() if self.enqueued else None,
            "due": self.due.isoformat() if self.due else None,
            "reason": self.reason,
            "description": self.description,
            "origin": self.origin,
        }


def to_bus_message(queue: Queue, topic: str, subscription: str, m: Any) -> BusMessage:
    """A received or peeked message (local LockedMessage or azure ServiceBusReceivedMessage)."""
    body = message_body(m)
    props = {
        str(k.decode() if isinstance(k, bytes) else k): v for k, v in (m.application_properties or {}).items()
    }
    try:
        envelope: Envelope | None = Envelope.from_body(body)
    except EnvelopeError:
        envelope = None
    attempt = envelope.attempt if envelope else props.get(PROP_ATTEMPT)
    entity = envelope.notice.entity if envelope else props.get(PROP_ENTITY)
    message_id = m.message_id.decode() if isinstance(m.message_id, bytes) else str(m.message_id or "")
    scheduled = getattr(m, "scheduled_enqueue_time_utc", None)
    return BusMessage(
        queue=queue,
        topic=topic,
        subscription=subscription,
        message_id=message_id,
        sequence_number=int(m.sequence_number or 0),
        entity=None if entity is None else str(entity),
        ids=envelope.notice.ids if envelope else (),
        attempt=None if attempt is None else int(attempt),
        enqueued=m.enqueued_time_utc,
        due=scheduled if queue == "scheduled" else None,
        reason=getattr(m, "dead_letter_reason", None),
        description=getattr(m, "dead_letter_error_description", None),
        origin=envelope.notice.origin if envelope else None,
    )


def _naming(messages: Iterable[BusMessage], ids: set[str] | None) -> list[BusMessage]:
    if ids is None:
        return list(messages)
    return [m for m in messages if {i.lower() for i in m.ids} & ids]


def bus_messages(
    settings: BusSettings,
    topology: Topology,
    targets: Sequence[tuple[str, str]],
    *,
    ids: Iterable[str] | None = None,
    queues: Sequence[Queue] = QUEUES,
    max_messages: int = 1000,
) -> list[BusMessage]:
    """The messages of `queues` on each target subscription (naming one of `ids`, if given).

    Raises BusError when the bus cannot be read (a local bus that does not exist included).
    """
    wanted = None if ids is None else {str(i).lower() for i in ids}
    if settings.backend == "local":
        return _local(settings, topology, targets, wanted, queues, max_messages)
    return _servicebus(settings, targets, wanted, queues, max_messages)


@contextmanager
def open_local_bus(settings: BusSettings, topology: Topology) -> Iterator[Any]:
    """The sandbox's local bus (BusError when it was never started; tests hand in their own)."""
    from shared.bus.local import LocalBus

    if not Path(settings.local_path).exists():
        raise BusError(f"no local bus at {settings.local_path} (start the sandbox: syncctl sandbox up)")
    with LocalBus(settings.local_path, topology) as bus:
        yield bus


def _local(
    settings: BusSettings,
    topology: Topology,
    targets: Sequence[tuple[str, str]],
    wanted: set[str] | None,
    queues: Sequence[Queue],
    max_messages: int,
) -> list[BusMessage]:
    out: list[BusMessage] = []
    with open_local_bus(settings, topology) as bus:
        for topic, sub in targets:
            readers = {
                "dead-lettered": lambda t=topic, s=sub: bus.peek_dead_letters(t, s, max_messages),
                "scheduled": lambda t=topic, s=sub: bus.peek_scheduled(t, s, max_messages),
                "active": lambda t=topic, s=sub: bus.peek(t, s, max_messages),
            }
            for queue in queues:
                found = (to_bus_message(queue, topic, sub, m) for m in readers[queue]())
                out += _naming(found, wanted)
    return out


def _servicebus(
    settings: BusSettings,
    targets: Sequence[tuple[str, str]],
    wanted: set[str] | None,
    queues: Sequence[Queue],
    max_messages: int,
) -> list[BusMessage]:
    from azure.core.exceptions import AzureError
    from azure.servicebus import ServiceBusSubQueue

    from shared.bus.servicebus import shared_client

    client = shared_client(settings)
    out: list[BusMessage] = []
    try:
        for topic, sub in targets:
            if "dead-lettered" in queues:
                with client.get_subscription_receiver(
                    topic_name=topic, subscription_name=sub, sub_queue=ServiceBusSubQueue.DEAD_LETTER
                ) as receiver:
                    found = receiver.peek_messages(max_message_count=max_messages)
                out += _naming((to_bus_message("dead-lettered", topic, sub, m) for m in found), wanted)
            if "scheduled" in queues or "active" in queues:
                with client.get_subscription_receiver(topic_name=topic, subscription_name=sub) as receiver:
                    found = receiver.peek_messages(max_message_count=max_messages)
                for m in found:
                    queue: Queue = (
                        "scheduled"
                        if str(getattr(m, "state", "")).lower().endswith("scheduled")
                        else "active"
                    )
                    if queue in queues:
                        out += _naming([to_bus_message(queue, topic, sub, m)], wanted)
    except AzureError as exc:
        raise BusError(f"reading the bus failed: {type(exc).__name__}: {exc}") from exc
    return out
