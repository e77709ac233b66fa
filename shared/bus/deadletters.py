"""Operator access to subscription dead-letter queues: list, resubmit with replay_to, purge.

Resubmitting copies a dead-lettered message (body, application properties, subject,
content type, correlation id) to the subscription's TOPIC with `replay_to=<subscription>`,
so that only that subscription's rule accepts it (infra/topology.json), under a fresh
message id (`<original>.r<suffix>`) so duplicate detection does not drop it; then it
completes the dead-lettered original (azure-platform.md §5: the portal leaves the original
behind, the standalone explorer's "remove" does what we do). The broker's DeadLetterReason /
DeadLetterErrorDescription properties are not copied.

Selecting messages: all, by dead-letter reason, by message id (combinable: a message must
satisfy every given criterion). Every operation has a dry run that only peeks.

To take messages out of a DLQ the broker requires locking everything ahead of them; the
engine therefore holds the locks of messages it skips until the scan ends and then abandons
them (they stay in the DLQ, delivery count +1). A scan stops after `max_messages`.

Two adapters extend `DeadLetterOps`: `LocalDeadLetters` (the sandbox's LocalBus) and
`ServiceBusDeadLetters` (azure-servicebus with `sub_queue=ServiceBusSubQueue.DEAD_LETTER`:
`peek_messages` for listing, receive + send + complete for resubmit).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypedDict, Unpack

from shared.bus.port import BusError, OutgoingMessage, PropertyValue, message_body
from shared.events import PROP_ENTITY, PROP_REPLAY_TO, Envelope, EnvelopeError

# Application properties the broker adds to dead-lettered messages; never copied.
BROKER_DEAD_LETTER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})
RESUBMIT_ID_MARKER = ".r"
_MAX_MESSAGE_ID = 128


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message as operators see it (ids only, never record contents)."""

    topic: str
    subscription: str
    sequence_number: int
    message_id: str
    enqueued_time_utc: datetime | None
    reason: str | None
    description: str | None
    delivery_count: int
    application_properties: dict[str, PropertyValue]
    subject: str | None
    content_type: str | None
    correlation_id: str | None
    body: bytes = field(repr=False)

    @property
    def entity(self) -> str | None:
        value = self.application_properties.get(PROP_ENTITY)
        if value is not None:
            return str(value)
        envelope = self.envelope
        return envelope.notice.entity if envelope else None

    @property
    def record_ids(self) -> tuple[str, ...]:
        envelope = self.envelope
        return envelope.notice.ids if envelope else ()

    @property
    def envelope(self) -> Envelope | None:
        """The change notice in the body, or None when the body is not one."""
        try:
            return Envelope.from_body(self.body)
        except EnvelopeError:
            return None


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operation touches. Empty criteria select nothing unless `all`."""

    all: bool = False
    reason: str | None = None
    message_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not (self.all or self.reason or self.message_ids):
            raise ValueError("choose the messages: all, a dead-letter reason, or message ids")

    def matches(self, item: DeadLetter) -> bool:
        """Reason codes match in any case (`--reason invalidemail` finds InvalidEmail)."""
        if self.reason is not None and (item.reason or "").lower() != self.reason.strip().lower():
            return False
        return not (self.message_ids and item.message_id not in self.message_ids)


class SettleOptions(TypedDict, total=False):
    """Options of resubmit and purge: `dry_run` only lists what would be done (it peeks);
    `max_messages` bounds the scan of the dead-letter queue (default 1000)."""

    dry_run: bool
    max_messages: int


Action = Literal["resubmitted", "purged", "would resubmit", "would purge", "copy sent, original kept"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one selected dead letter."""

    dead_letter: DeadLetter
    action: Action
    new_message_id: str | None = None
    note: str | None = None


def resubmitted_id(original: str) -> str:
    """A fresh message id that still shows where it came from (<= 128 characters)."""
    suffix = f"{RESUBMIT_ID_MARKER}{uuid.uuid4().hex[:8]}"
    return original[: _MAX_MESSAGE_ID - len(suffix)] + suffix


def resubmission_of(item: DeadLetter) -> OutgoingMessage:
    """The copy sent to the topic so that only `item.subscription` receives it again."""
    props = {k: v for k, v in item.application_properties.items() if k not in BROKER_DEAD_LETTER_PROPERTIES}
    props[PROP_REPLAY_TO] = item.subscription
    return OutgoingMessage(
        body=item.body,
        message_id=resubmitted_id(item.message_id),
        application_properties=props,
        subject=item.subject,
        content_type=item.content_type or "application/octet-stream",
        correlation_id=item.correlation_id,
    )


# ----------------------------------------------------------------------------- engine
class DeadLetterSession(Protocol):
    """One subscription's DLQ plus a sender to its topic, as the engine needs them."""

    def peek(self, max_messages: int, from_sequence: int) -> list[DeadLetter]: ...
    def receive(self, max_messages: int) -> list[tuple[DeadLetter, Any]]: ...
    def complete(self, handle: Any) -> None: ...
    def abandon(self, handle: Any) -> None: ...
    def send(self, message: OutgoingMessage) -> None: ...


class DeadLetterOps:
    """The operator port (syncctl dlq): list, resubmit and purge dead letters, on top of
    per-subscription sessions (the shared mechanics; LocalDeadLetters and
    ServiceBusDeadLetters supply the sessions)."""

    page_size = 100

    def _session(self, topic: str, subscription: str) -> AbstractContextManager[DeadLetterSession]:
        raise NotImplementedError

    def list(
        self, topic: str, subscription: str, selection: Selection | None = None, *, max_messages: int = 100
    ) -> builtins.list[DeadLetter]:
        selection = selection or Selection(all=True)
        out: list[DeadLetter] = []
        with self._session(topic, subscription) as session:
            for item in self._peek_all(session, max_messages):
                if selection.matches(item):
                    out.append(item)
        return out

    def _peek_all(self, session: DeadLetterSession, limit: int) -> Iterator[DeadLetter]:
        seen = 0
        next_sequence = 0
        while seen < limit:
            page = session.peek(min(self.page_size, limit - seen), next_sequence)
            if not page:
                return
            for item in page:
                seen += 1
                yield item
            next_sequence = page[-1].sequence_number + 1

    def _scan(
        self, session: DeadLetterSession, selection: Selection, limit: int
    ) -> Iterator[tuple[DeadLetter, Any]]:
        """Yield locked matching messages; hold locks on the rest, release them at the end."""
        skipped: list[Any] = []
        scanned = 0
        try:
            while scanned < limit:
                batch = session.receive(min(self.page_size, limit - scanned))
                if not batch:
                    break
                for item, handle in batch:
                    scanned += 1
                    if selection.matches(item):
                        yield item, handle
                    else:
                        skipped.append(handle)
        finally:
            for handle in skipped:
                try:
                    session.abandon(handle)
                except BusError:
                    continue  # its lock ran out: it is back in the DLQ either way

    def resubmit(
        self, topic: str, subscription: str, selection: Selection, **options: Unpack[SettleOptions]
    ) -> builtins.list[Outcome]:
        """Send each selected dead letter back to its subscription only, then remove it."""
        return self._settle_matches(
            topic, subscription, selection, _resubmit_one, "would resubmit", **options
        )

    def purge(
        self, topic: str, subscription: str, selection: Selection, **options: Unpack[SettleOptions]
    ) -> builtins.list[Outcome]:
        """Remove each selected dead letter for good."""
        return self._settle_matches(topic, subscription, selection, _purge_one, "would purge", **options)

    def _settle_matches(
        self,
        topic: str,
        subscription: str,
        selection: Selection,
        settle: Callable[[DeadLetterSession, DeadLetter, Any], Outcome],
        would: Action,
        *,
        dry_run: bool = False,
        max_messages: int = 1000,
    ) -> builtins.list[Outcome]:
        """`settle` each matching dead letter (locked); in a dry run only list them as `would`."""
        if dry_run:
            items = self.list(topic, subscription, selection, max_messages=max_messages)
            return [Outcome(item, would) for item in items]
        with self._session(topic, subscription) as session:
            matches = self._scan(session, selection, max_messages)
            return [settle(session, item, handle) for item, handle in matches]

    def close(self) -> None:
        return None


def _resubmit_one(session: DeadLetterSession, item: DeadLetter, handle: Any) -> Outcome:
    """Send a fresh copy to the topic, then remove the dead letter (kept if that fails)."""
    copy = resubmission_of(item)
    session.send(copy)
    try:
        session.complete(handle)
    except BusError as exc:
        return Outcome(item, "copy sent, original kept", copy.message_id, str(exc))
    return Outcome(item, "resubmitted", copy.message_id)


def _purge_one(session: DeadLetterSession, item: DeadLetter, handle: Any) -> Outcome:
    session.complete(handle)
    return Outcome(item, "purged")


# ----------------------------------------------------------------------------- local
class _LocalSession:
    # Hold skipped messages long enough for a large scan (the broker's maximum lock).
    lock_duration = timedelta(minutes=5)

    def __init__(self, bus: Any, topic: str, subscription: str) -> None:
        self.bus, self.topic, self.subscription = bus, topic, subscription

    def _convert(self, m: Any) -> DeadLetter:
        return _dead_letter(m, self.topic, self.subscription)

    def peek(self, max_messages: int, from_sequence: int) -> list[DeadLetter]:
        peeked = self.bus.peek_dead_letters(self.topic, self.subscription, max_messages, from_sequence)
        return [self._convert(m) for m in peeked]

    def receive(self, max_messages: int) -> list[tuple[DeadLetter, Any]]:
        got = self.bus.receive_dead_letters(
            self.topic, self.subscription, max_messages, lock_duration=self.lock_duration
        )
        return [(self._convert(m), m) for m in got]

    def complete(self, handle: Any) -> None:
        self.bus.complete(handle)

    def abandon(self, handle: Any) -> None:
        self.bus.abandon(handle)

    def send(self, message: OutgoingMessage) -> None:
        self.bus.publish(self.topic, [message])


class LocalDeadLetters(DeadLetterOps):
    """Dead-letter operations on the sandbox's LocalBus."""

    def __init__(self, bus: Any, *, owns_bus: bool = False) -> None:
        self.bus = bus
        self._owns_bus = owns_bus

    @contextmanager
    def _session(self, topic: str, subscription: str) -> Iterator[DeadLetterSession]:
        yield _LocalSession(self.bus, topic, subscription)

    def close(self) -> None:
        if self._owns_bus:
            self.bus.close()


# ----------------------------------------------------------------------------- Azure
def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value


def _dead_letter(m: Any, topic: str, subscription: str) -> DeadLetter:
    """A received or peeked dead letter: an azure.servicebus ServiceBusReceivedMessage (bytes
    or str in some fields) or the local bus's LockedMessage, which has the same shape."""
    props = {str(_text(k)): _property_value(v) for k, v in (m.application_properties or {}).items()}
    return DeadLetter(
        topic=topic,
        subscription=subscription,
        sequence_number=int(m.sequence_number or 0),
        message_id=str(_text(m.message_id) or ""),
        enqueued_time_utc=m.enqueued_time_utc,
        reason=m.dead_letter_reason,
        description=m.dead_letter_error_description,
        delivery_count=int(m.delivery_count or 0),
        application_properties=props,
        subject=m.subject,
        content_type=m.content_type,
        correlation_id=_text(m.correlation_id),
        body=message_body(m),
    )


def _property_value(value: Any) -> PropertyValue:
    value = _text(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class _ServiceBusSession:
    def __init__(self, receiver: Any, sender: Any, topic: str, subscription: str, max_wait_time: float):
        self.receiver, self.sender = receiver, sender
        self.topic, self.subscription = topic, subscription
        self.max_wait_time = max_wait_time

    def _convert(self, m: Any) -> DeadLetter:
        return _dead_letter(m, self.topic, self.subscription)

    @staticmethod
    def _guard(what: str, operation: Any, *args: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import AzureError

        try:
            return operation(*args, **kwargs)
        except AzureError as exc:
            raise BusError(f"{what} failed: {type(exc).__name__}: {exc}") from exc

    def peek(self, max_messages: int, from_sequence: int) -> list[DeadLetter]:
        kwargs: dict[str, Any] = {"max_message_count": max_messages}
        if from_sequence:
            kwargs["sequence_number"] = from_sequence
        peeked = self._guard("peeking dead letters", self.receiver.peek_messages, **kwargs)
        return [self._convert(m) for m in peeked]

    def receive(self, max_messages: int) -> list[tuple[DeadLetter, Any]]:
        got = self._guard(
            "receiving dead letters",
            self.receiver.receive_messages,
            max_message_count=max_messages,
            max_wait_time=self.max_wait_time,
        )
        return [(self._convert(m), m) for m in got]

    def complete(self, handle: Any) -> None:
        self._guard("completing a dead letter", self.receiver.complete_message, handle)

    def abandon(self, handle: Any) -> None:
        self._guard("releasing a dead letter", self.receiver.abandon_message, handle)

    def send(self, message: OutgoingMessage) -> None:
        from shared.bus.servicebus import to_service_bus_message

        self._guard(
            f"sending the copy to topic {self.topic!r}",
            self.sender.send_messages,
            to_service_bus_message(message),
        )


class ServiceBusDeadLetters(DeadLetterOps):
    """Dead-letter operations on Azure Service Bus (see module docstring)."""

    def __init__(self, settings: Any, *, client: Any = None, max_wait_time: float = 5.0) -> None:
        from shared.bus.servicebus import shared_client

        self._client = client if client is not None else shared_client(settings)
        self._max_wait_time = max_wait_time

    @contextmanager
    def _session(self, topic: str, subscription: str) -> Iterator[DeadLetterSession]:
        from azure.core.exceptions import AzureError
        from azure.servicebus import ServiceBusSubQueue

        try:
            with (
                self._client.get_subscription_receiver(
                    topic_name=topic, subscription_name=subscription, sub_queue=ServiceBusSubQueue.DEAD_LETTER
                ) as receiver,
                self._client.get_topic_sender(topic_name=topic) as sender,
            ):
                yield _ServiceBusSession(receiver, sender, topic, subscription, self._max_wait_time)
        except AzureError as exc:
            raise BusError(f"dead-letter operation on {topic}/{subscription} failed: {exc}") from exc


def select(
    *, all_messages: bool = False, reason: str | None = None, message_ids: Sequence[str] = ()
) -> Selection:
    """Build a Selection from CLI-style options."""
    return Selection(all=all_messages, reason=reason, message_ids=frozenset(message_ids))
