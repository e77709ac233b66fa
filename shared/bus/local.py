"""The sandbox's local bus: Service Bus topic/subscription semantics, durable in SQLite.

Built from infra/topology.json (the same file Bicep reads). What it models, as the broker
does (azure-platform.md §4):

- topic fan-out: each published message is copied to every subscription whose SQL rule
  matches (shared.bus.sqlfilter); a message that matches none is dropped. A rule that
  throws while evaluating sends the copy to that subscription's dead-letter queue when the
  subscription has deadLetteringOnFilterEvaluationExceptions (reason
  `FILTER_EVALUATION_DEAD_LETTER_REASON`; the broker's exact text is UNCONFIRMED).
- peek-lock: `receive` locks messages for the subscription's lockDuration (or the given
  one) and increments the delivery count; `complete`, `abandon`, `dead_letter`, `defer`
  settle; `renew_lock` extends. A lock that runs out makes the message available again.
  Settling with a lost lock raises `MessageLockLostError`.
- once the delivery count has reached the subscription's maxDeliveryCount, abandoning the
  message (or letting its lock expire) dead-letters it with reason `MaxDeliveryCountExceeded`.
- scheduled messages stay invisible until their time; deferred messages are only returned
  by `receive_deferred(sequence_numbers)`.
- duplicate detection: on topics with requiresDuplicateDetection, a message whose
  message_id was accepted within duplicateDetectionHistoryTimeWindow is silently dropped.
- TTL: the effective time-to-live is the smallest of the message's, the topic's and the
  subscription's; when it passes, an unlocked message is dead-lettered with
  `TTLExpiredException` (deadLetteringOnMessageExpiration) or dropped. TTL does not apply
  inside the dead-letter queue.
- size: a message larger than `max_message_bytes` (default 256 KB, the Standard tier) is
  refused with MessageTooLargeError. The size counted is body + properties + ids, an
  approximation of the broker's (which also counts AMQP framing).

Several threads and several processes (the local Functions host, syncctl, tests) may open
the same file: the database runs in WAL mode and every change happens in a
`BEGIN IMMEDIATE` transaction, so two receivers never lock the same message. Broker-side
timers (lock expiry, TTL, scheduled times) are applied lazily by each operation, so a
closed-and-reopened bus behaves as if time had passed while it was closed. Time comes from
an injectable clock so tests move it without sleeping.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partialmethod
from pathlib import Path
from typing import Any, Literal

from shared.bus.port import BusError, MessageTooLargeError, OutgoingMessage, PropertyValue
from shared.bus.sqlfilter import FilterEvaluationError, FilterSyntaxError, SqlFilter, compile_filter
from shared.bus.topology import Subscription, Topic, Topology, TopologyError, load_topology

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"
TTL_EXPIRED = "TTLExpiredException"
# UNCONFIRMED: the DeadLetterReason text the broker uses for filter evaluation exceptions.
FILTER_EVALUATION_DEAD_LETTER_REASON = "FilterEvaluationException"
MAX_MESSAGE_ID_LENGTH = 128

Clock = Callable[[], datetime]

_QUEUE_ACTIVE = "active"
_QUEUE_DEFERRED = "deferred"
_QUEUE_DLQ = "dlq"
SubQueue = Literal["deadletter"]
DEAD_LETTER_SUB_QUEUE: SubQueue = "deadletter"  # azure.servicebus.ServiceBusSubQueue.DEAD_LETTER

_PRUNE_EVERY_SECONDS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (topic TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS duplicates (
    topic TEXT NOT NULL, message_id TEXT NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (topic, message_id)
);
CREATE INDEX IF NOT EXISTS ix_duplicates_expiry ON duplicates (topic, expires_at);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    subscription TEXT NOT NULL,
    queue TEXT NOT NULL,
    sequence_number INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    properties TEXT NOT NULL,
    subject TEXT,
    content_type TEXT,
    correlation_id TEXT,
    enqueued_at REAL NOT NULL,
    scheduled_at REAL,
    visible_at REAL NOT NULL,
    expires_at REAL,
    ttl_seconds REAL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until REAL,
    lock_seconds REAL,
    dead_letter_reason TEXT,
    dead_letter_description TEXT,
    dead_letter_source TEXT
);
CREATE INDEX IF NOT EXISTS ix_entries_queue
    ON entries (topic, subscription, queue, sequence_number);
CREATE UNIQUE INDEX IF NOT EXISTS ix_entries_lock ON entries (lock_token)
    WHERE lock_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_entries_locked ON entries (topic, subscription, locked_until)
    WHERE lock_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_entries_expiry ON entries (topic, subscription, expires_at)
    WHERE queue <> 'dlq' AND lock_token IS NULL;
"""
_SCHEMA_VERSION = "1"


class MessageLockLostError(BusError):
    """The message's lock expired or the message was already settled; settle failed."""


class UnknownEntityError(BusError):
    """The topic or subscription does not exist in the topology."""


@dataclass(frozen=True)
class LockedMessage:
    """A received (or peeked) message, shaped like azure.servicebus.ServiceBusReceivedMessage.

    `lock_token` is empty and `locked_until` None for peeked messages (they cannot be settled).
    """

    body: bytes
    message_id: str
    application_properties: dict[str, PropertyValue]
    subject: str | None
    content_type: str | None
    correlation_id: str | None
    sequence_number: int
    enqueued_time_utc: datetime
    scheduled_enqueue_time_utc: datetime | None
    expires_at_utc: datetime | None
    time_to_live: timedelta | None
    delivery_count: int
    lock_token: str
    locked_until: datetime | None
    dead_letter_reason: str | None
    dead_letter_error_description: str | None
    dead_letter_source: str | None
    topic: str
    subscription: str


@dataclass(frozen=True)
class SubscriptionCounts:
    """Messages of one subscription. `active` counts every message visible now, locked or not
    (as Service Bus's ActiveMessageCount does); `locked` is the part of it a receiver holds."""

    active: int
    scheduled: int
    dead_letter: int
    deferred: int
    locked: int = 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime) -> float:
    if value.tzinfo is None:
        raise ValueError(f"datetime {value.isoformat()} must carry a time zone (UTC)")
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def message_size(message: OutgoingMessage) -> int:
    """Approximate broker size: body, application properties and the id/header strings."""
    size = len(message.body)
    for key, value in message.application_properties.items():
        size += len(key.encode("utf-8")) + len(str(value).encode("utf-8"))
    for text in (message.message_id, message.subject, message.content_type, message.correlation_id):
        if text:
            size += len(text.encode("utf-8"))
    return size


class LocalBus:
    """Service Bus topics and subscriptions in one SQLite file (see module docstring)."""

    def __init__(
        self,
        path: str | Path,
        topology: Topology | None = None,
        *,
        clock: Clock = _utc_now,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        busy_timeout_seconds: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.topology = topology if topology is not None else load_topology()
        self.max_message_bytes = max_message_bytes
        self._clock = clock
        self._filters: dict[tuple[str, str], SqlFilter] = {}
        for t in self.topology.topics:
            for s in t.subscriptions:
                try:
                    self._filters[(t.name, s.name)] = compile_filter(s.rule.sql_filter)
                except FilterSyntaxError as exc:
                    raise TopologyError(
                        f"topic {t.name!r} subscription {s.name!r} rule {s.rule.name!r}: {exc}"
                    ) from exc
        self._lock = threading.RLock()
        self._pruned: dict[str, float] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout_seconds,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a process crash (the sandbox's restart tests).
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._write() as conn:
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (_SCHEMA_VERSION,),
                )
        except sqlite3.Error as exc:
            raise BusError(f"cannot open the local bus at {self.path}: {exc}") from exc
        self._closed = False

    # ------------------------------------------------------------------ plumbing
    def _now(self) -> float:
        return _ts(self._clock())

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: serialised against other threads and processes."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise BusError(f"local bus is busy or unavailable: {exc}") from exc
            try:
                yield conn
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise BusError(f"local bus operation failed: {exc}") from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK")
                    raise BusError(f"local bus commit failed: {exc}") from exc

    def _entities(self, topic: str, subscription: str | None = None) -> tuple[Topic, Subscription | None]:
        try:
            t = self.topology.topic(topic)
        except KeyError as exc:
            raise UnknownEntityError(f"unknown topic {topic!r}") from exc
        if subscription is None:
            return t, None
        try:
            return t, t.subscription(subscription)
        except KeyError as exc:
            raise UnknownEntityError(f"topic {topic!r} has no subscription {subscription!r}") from exc

    def _subscription(self, topic: str, subscription: str) -> Subscription:
        _, sub = self._entities(topic, subscription)
        assert sub is not None
        return sub

    @staticmethod
    def _to_message(row: sqlite3.Row) -> LockedMessage:
        ttl = row["ttl_seconds"]
        return LockedMessage(
            body=bytes(row["body"]),
            message_id=row["message_id"],
            application_properties=json.loads(row["properties"]),
            subject=row["subject"],
            content_type=row["content_type"],
            correlation_id=row["correlation_id"],
            sequence_number=row["sequence_number"],
            enqueued_time_utc=_dt(row["enqueued_at"]),  # type: ignore[arg-type]
            scheduled_enqueue_time_utc=_dt(row["scheduled_at"]),
            expires_at_utc=_dt(row["expires_at"]),
            time_to_live=None if ttl is None else timedelta(seconds=ttl),
            delivery_count=row["delivery_count"],
            lock_token=row["lock_token"] or "",
            locked_until=_dt(row["locked_until"]),
            dead_letter_reason=row["dead_letter_reason"],
            dead_letter_error_description=row["dead_letter_description"],
            dead_letter_source=row["dead_letter_source"],
            topic=row["topic"],
            subscription=row["subscription"],
        )

    def _sweep(self, conn: sqlite3.Connection, topic: str, subscription: str, now: float) -> None:
        """Apply the broker's timers: expired locks, max delivery count, TTL."""
        sub = self._subscription(topic, subscription)
        # Queue names are literals here so SQLite can use the partial indexes above.
        # Expired locks on active or deferred messages: dead-letter when out of deliveries.
        conn.execute(
            """UPDATE entries SET queue = 'dlq', lock_token = NULL, locked_until = NULL,
                   dead_letter_reason = ?, dead_letter_description = ?
                WHERE topic = ? AND subscription = ? AND lock_token IS NOT NULL
                  AND locked_until <= ? AND queue <> 'dlq' AND delivery_count >= ?""",
            (
                MAX_DELIVERY_COUNT_EXCEEDED,
                _max_delivery_description(sub.max_delivery_count),
                topic,
                subscription,
                now,
                sub.max_delivery_count,
            ),
        )
        conn.execute(
            """UPDATE entries SET lock_token = NULL, locked_until = NULL
                WHERE topic = ? AND subscription = ? AND lock_token IS NOT NULL
                  AND locked_until <= ?""",
            (topic, subscription, now),
        )
        # TTL on unlocked active/deferred messages (never inside the DLQ).
        expired = (topic, subscription, now)
        if sub.dead_lettering_on_message_expiration:
            conn.execute(
                """UPDATE entries SET queue = 'dlq', dead_letter_reason = ?, dead_letter_description = ?
                    WHERE topic = ? AND subscription = ? AND queue <> 'dlq' AND lock_token IS NULL
                      AND expires_at <= ?""",
                (TTL_EXPIRED, "The message expired and was dead lettered.", *expired),
            )
        else:
            conn.execute(
                """DELETE FROM entries
                    WHERE topic = ? AND subscription = ? AND queue <> 'dlq' AND lock_token IS NULL
                      AND expires_at <= ?""",
                expired,
            )

    # ------------------------------------------------------------------ publishing
    def _validate(self, message: OutgoingMessage) -> None:
        if not isinstance(message.body, (bytes, bytearray)):
            raise BusError(f"message {message.message_id!r}: body must be bytes")
        if not message.message_id or len(message.message_id) > MAX_MESSAGE_ID_LENGTH:
            raise BusError(
                f"message_id must be 1 to {MAX_MESSAGE_ID_LENGTH} characters, got {message.message_id!r}"
            )
        for key, value in message.application_properties.items():
            if not isinstance(key, str) or not key:
                raise BusError(f"message {message.message_id!r}: property names must be non-empty strings")
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise BusError(
                    f"message {message.message_id!r}: property {key!r} has unsupported type "
                    f"{type(value).__name__} (use str, int, float, bool)"
                )
        size = message_size(message)
        if size > self.max_message_bytes:
            raise MessageTooLargeError(
                f"message {message.message_id!r} is {size} bytes; the limit is {self.max_message_bytes}"
            )
        if message.scheduled_enqueue_time_utc is not None:
            _ts(message.scheduled_enqueue_time_utc)

    def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send all messages atomically (like one broker batch)."""
        t, _ = self._entities(topic)
        for message in messages:
            self._validate(message)
        if not messages:
            return
        with self._write() as conn:
            now = self._now()
            # Expired ids never match (the lookup checks expires_at); prune them now and then,
            # not on every publish.
            if now - self._pruned.get(topic, float("-inf")) >= _PRUNE_EVERY_SECONDS:
                conn.execute("DELETE FROM duplicates WHERE topic = ? AND expires_at <= ?", (topic, now))
                self._pruned[topic] = now
            for message in messages:
                self._accept(conn, t, message, now)

    def publish_scheduled(
        self, topic: str, messages: Sequence[OutgoingMessage], enqueue_at: datetime
    ) -> None:
        _ts(enqueue_at)
        self.publish(
            topic, [dataclasses.replace(m, scheduled_enqueue_time_utc=enqueue_at) for m in messages]
        )

    def _accept(self, conn: sqlite3.Connection, topic: Topic, message: OutgoingMessage, now: float) -> None:
        if topic.requires_duplicate_detection:
            seen = conn.execute(
                "SELECT 1 FROM duplicates WHERE topic = ? AND message_id = ? AND expires_at > ?",
                (topic.name, message.message_id, now),
            ).fetchone()
            if seen:
                return  # duplicates are dropped silently, as the broker does
            conn.execute(
                "INSERT OR REPLACE INTO duplicates (topic, message_id, expires_at) VALUES (?, ?, ?)",
                (topic.name, message.message_id, now + topic.duplicate_window.total_seconds()),
            )
        row = conn.execute(
            "INSERT INTO sequences (topic, last) VALUES (?, 1) "
            "ON CONFLICT (topic) DO UPDATE SET last = last + 1 RETURNING last",
            (topic.name,),
        ).fetchone()
        sequence_number = int(row[0])
        scheduled = (
            _ts(message.scheduled_enqueue_time_utc) if message.scheduled_enqueue_time_utc else None
        )
        visible_at = max(now, scheduled) if scheduled is not None else now
        props = dict(message.application_properties)
        system = {
            "MessageId": message.message_id,
            "CorrelationId": message.correlation_id,
            "Label": message.subject,
            "ContentType": message.content_type,
            "To": None,
            "ReplyTo": None,
            "SessionId": None,
            "ReplyToSessionId": None,
        }
        for sub in topic.subscriptions:
            queue = _QUEUE_ACTIVE
            reason = description = None
            try:
                matched = self._filters[(topic.name, sub.name)].matches(props, system)
            except FilterEvaluationError as exc:
                if not sub.dead_lettering_on_filter_evaluation_exceptions:
                    continue
                matched, queue = True, _QUEUE_DLQ
                reason, description = FILTER_EVALUATION_DEAD_LETTER_REASON, f"rule {sub.rule.name}: {exc}"
            if not matched:
                continue
            ttl_candidates = [topic.ttl.total_seconds(), sub.ttl.total_seconds()]
            if message.time_to_live is not None:
                ttl_candidates.append(message.time_to_live.total_seconds())
            ttl = min(ttl_candidates)
            conn.execute(
                """INSERT INTO entries (topic, subscription, queue, sequence_number, message_id,
                       body, properties, subject, content_type, correlation_id, enqueued_at,
                       scheduled_at, visible_at, expires_at, ttl_seconds,
                       dead_letter_reason, dead_letter_description)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    topic.name,
                    sub.name,
                    queue,
                    sequence_number,
                    message.message_id,
                    bytes(message.body),
                    json.dumps(props),
                    message.subject,
                    message.content_type,
                    message.correlation_id,
                    visible_at,
                    scheduled,
                    visible_at,
                    visible_at + ttl,
                    ttl,
                    reason,
                    description,
                ),
            )

    def check(self) -> None:
        try:
            with self._lock:
                self._conn.execute("SELECT count(*) FROM meta").fetchone()
        except (sqlite3.Error, AttributeError) as exc:
            raise BusError(f"local bus at {self.path} is unavailable: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._conn.close()
                self._closed = True

    def __enter__(self) -> LocalBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ receiving
    def receive(
        self,
        topic: str,
        subscription: str,
        max_messages: int = 1,
        *,
        lock_duration: timedelta | None = None,
        sub_queue: SubQueue | None = None,
    ) -> list[LockedMessage]:
        """Peek-lock up to `max_messages` visible messages, oldest sequence number first; with
        `sub_queue="deadletter"` (the SDK receiver's ServiceBusSubQueue.DEAD_LETTER) those of
        the subscription's dead-letter queue, settled with complete/abandon."""
        queue = _QUEUE_DLQ if sub_queue == DEAD_LETTER_SUB_QUEUE else _QUEUE_ACTIVE
        return self._receive(topic, subscription, queue, max_messages, lock_duration)

    receive_dead_letters = partialmethod(receive, sub_queue=DEAD_LETTER_SUB_QUEUE)

    def _receive(
        self,
        topic: str,
        subscription: str,
        queue: str,
        max_messages: int,
        lock_duration: timedelta | None,
        sequence_numbers: Sequence[int] | None = None,
    ) -> list[LockedMessage]:
        sub = self._subscription(topic, subscription)
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        lock = (lock_duration or sub.lock).total_seconds()
        if lock <= 0:
            raise ValueError("lock_duration must be positive")
        with self._write() as conn:
            now = self._now()
            self._sweep(conn, topic, subscription, now)
            params: list[Any] = [topic, subscription, queue, now]
            extra = ""
            if sequence_numbers is not None:
                extra = f" AND sequence_number IN ({','.join('?' * len(sequence_numbers))})"
                params.extend(sequence_numbers)
            rows = conn.execute(
                # `extra` holds only "?" placeholders, never values.
                f"""SELECT id FROM entries
                    WHERE topic = ? AND subscription = ? AND queue = ? AND visible_at <= ?
                      AND lock_token IS NULL{extra}
                    ORDER BY sequence_number, id LIMIT ?""",  # noqa: S608
                (*params, max_messages),
            ).fetchall()
            out = []
            for row in rows:
                locked = conn.execute(
                    """UPDATE entries SET lock_token = ?, locked_until = ?, lock_seconds = ?,
                           delivery_count = delivery_count + 1
                       WHERE id = ? RETURNING *""",
                    (str(uuid.uuid4()), now + lock, lock, row["id"]),
                ).fetchone()
                out.append(self._to_message(locked))
            return out

    def receive_deferred(
        self,
        topic: str,
        subscription: str,
        sequence_numbers: Sequence[int],
        *,
        lock_duration: timedelta | None = None,
    ) -> list[LockedMessage]:
        """Lock deferred messages by sequence number (the only way to get them back)."""
        if not sequence_numbers:
            return []
        return self._receive(
            topic, subscription, _QUEUE_DEFERRED, len(sequence_numbers), lock_duration, sequence_numbers
        )

    def peek(
        self, topic: str, subscription: str, max_messages: int = 100, from_sequence: int = 0
    ) -> list[LockedMessage]:
        """Active messages without locking them (scheduled ones excluded)."""
        return self._peek(topic, subscription, _QUEUE_ACTIVE, max_messages, from_sequence)

    def peek_scheduled(self, topic: str, subscription: str, max_messages: int = 100) -> list[LockedMessage]:
        """Scheduled messages not yet due (retry copies, postponed work), soonest first."""
        with self._write() as conn:
            now = self._now()
            rows = conn.execute(
                """SELECT * FROM entries
                   WHERE topic = ? AND subscription = ? AND queue = ? AND visible_at > ?
                   ORDER BY visible_at, sequence_number LIMIT ?""",
                (topic, subscription, _QUEUE_ACTIVE, now, max_messages),
            ).fetchall()
        return [dataclasses.replace(self._to_message(r), lock_token="", locked_until=None) for r in rows]

    def peek_dead_letters(
        self, topic: str, subscription: str, max_messages: int = 100, from_sequence: int = 0
    ) -> list[LockedMessage]:
        """Dead-lettered messages without locking them, by sequence number."""
        return self._peek(topic, subscription, _QUEUE_DLQ, max_messages, from_sequence)

    def _peek(
        self, topic: str, subscription: str, queue: str, max_messages: int, from_sequence: int
    ) -> list[LockedMessage]:
        with self._write() as conn:
            now = self._now()
            self._sweep(conn, topic, subscription, now)
            rows = conn.execute(
                """SELECT * FROM entries
                   WHERE topic = ? AND subscription = ? AND queue = ? AND visible_at <= ?
                     AND sequence_number >= ?
                   ORDER BY sequence_number, id LIMIT ?""",
                (topic, subscription, queue, now, from_sequence, max_messages),
            ).fetchall()
        return [dataclasses.replace(self._to_message(r), lock_token="", locked_until=None) for r in rows]

    def counts(self, topic: str, subscription: str) -> SubscriptionCounts:
        with self._write() as conn:
            now = self._now()
            self._sweep(conn, topic, subscription, now)
            row = conn.execute(
                """SELECT
                     sum(queue = ? AND visible_at <= ?), sum(queue = ? AND visible_at > ?),
                     sum(queue = ?), sum(queue = ?), sum(queue = ? AND lock_token IS NOT NULL)
                   FROM entries WHERE topic = ? AND subscription = ?""",
                (
                    _QUEUE_ACTIVE, now, _QUEUE_ACTIVE, now, _QUEUE_DLQ, _QUEUE_DEFERRED,
                    _QUEUE_ACTIVE, topic, subscription,
                ),
            ).fetchone()
        return SubscriptionCounts(*(int(v or 0) for v in row))

    def purge_dead_letters(self, topic: str, subscription: str) -> int:
        """Delete every message of the subscription's dead-letter queue; return how many."""
        self._subscription(topic, subscription)
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM entries WHERE topic = ? AND subscription = ? AND queue = ?",
                (topic, subscription, _QUEUE_DLQ),
            )
            return cur.rowcount

    # ------------------------------------------------------------------ settlement
    @contextmanager
    def _settle(self, msg: LockedMessage) -> Iterator[tuple[sqlite3.Connection, sqlite3.Row, float]]:
        if not msg.lock_token:
            raise BusError("a peeked message cannot be settled; receive it first")
        lost = False
        with self._write() as conn:
            now = self._now()
            self._sweep(conn, msg.topic, msg.subscription, now)
            row = conn.execute(
                "SELECT * FROM entries WHERE lock_token = ? AND topic = ? AND subscription = ?",
                (msg.lock_token, msg.topic, msg.subscription),
            ).fetchone()
            if row is None:
                lost = True  # commit the sweep, then raise outside the transaction
            else:
                yield conn, row, now
        if lost:
            raise MessageLockLostError(
                f"the lock on message {msg.message_id!r} (sequence {msg.sequence_number}) in "
                f"{msg.topic}/{msg.subscription} expired or the message was already settled"
            )

    def complete(self, msg: LockedMessage) -> None:
        with self._settle(msg) as (conn, row, _):
            conn.execute("DELETE FROM entries WHERE id = ?", (row["id"],))

    def abandon(
        self, msg: LockedMessage, properties_to_modify: Mapping[str, PropertyValue] | None = None
    ) -> None:
        sub = self._subscription(msg.topic, msg.subscription)
        with self._settle(msg) as (conn, row, _):
            props = json.loads(row["properties"])
            if properties_to_modify:
                props.update(properties_to_modify)
            if row["queue"] != _QUEUE_DLQ and row["delivery_count"] >= sub.max_delivery_count:
                conn.execute(
                    """UPDATE entries SET queue = ?, lock_token = NULL, locked_until = NULL,
                           properties = ?, dead_letter_reason = ?, dead_letter_description = ?
                       WHERE id = ?""",
                    (
                        _QUEUE_DLQ,
                        json.dumps(props),
                        MAX_DELIVERY_COUNT_EXCEEDED,
                        _max_delivery_description(sub.max_delivery_count),
                        row["id"],
                    ),
                )
            else:
                conn.execute(
                    "UPDATE entries SET lock_token = NULL, locked_until = NULL, properties = ? WHERE id = ?",
                    (json.dumps(props), row["id"]),
                )

    def dead_letter(
        self, msg: LockedMessage, reason: str | None = None, description: str | None = None
    ) -> None:
        with self._settle(msg) as (conn, row, _):
            if row["queue"] == _QUEUE_DLQ:
                raise BusError("a message in the dead-letter queue cannot be dead-lettered again")
            conn.execute(
                """UPDATE entries SET queue = ?, lock_token = NULL, locked_until = NULL,
                       dead_letter_reason = ?, dead_letter_description = ?
                   WHERE id = ?""",
                (_QUEUE_DLQ, reason, description, row["id"]),
            )

    def defer(self, msg: LockedMessage) -> None:
        with self._settle(msg) as (conn, row, _):
            if row["queue"] == _QUEUE_DLQ:
                raise BusError("deferring dead-lettered messages is not supported by the local bus")
            conn.execute(
                "UPDATE entries SET queue = ?, lock_token = NULL, locked_until = NULL WHERE id = ?",
                (_QUEUE_DEFERRED, row["id"]),
            )

    def renew_lock(self, msg: LockedMessage) -> datetime:
        """Extend the lock by its duration from now; return the new locked-until time."""
        with self._settle(msg) as (conn, row, now):
            until = now + float(row["lock_seconds"])
            conn.execute("UPDATE entries SET locked_until = ? WHERE id = ?", (until, row["id"]))
        result = _dt(until)
        assert result is not None
        return result


def _max_delivery_description(max_delivery_count: int) -> str:
    return f"Message could not be consumed after {max_delivery_count} delivery attempts."
