"""The Azure Service Bus adapter of the bus port, on the azure-servicebus SDK.

Connection: `ServiceBusConnection` (a SAS connection string) or, preferred in Azure,
`ServiceBusConnection__fullyQualifiedNamespace` with `DefaultAzureCredential` (given the
client id of a user-assigned managed identity when `ServiceBusConnection__clientId` is set).
One `ServiceBusClient` per process and connection (module scope, as the SDK recommends);
each publisher keeps one sender per topic and serialises its use (senders are not
thread-safe).

Publishing fills `ServiceBusMessageBatch`es from `sender.create_message_batch()` (whose size
limit the broker announces when the link opens: 256 KB on Standard) and starts a new batch
whenever `add_message` raises `MessageSizeExceededError`; a message that does not fit in an
empty batch raises `MessageTooLargeError` before anything is sent. Scheduled publishing sets
`scheduled_enqueue_time_utc` on each message (the broker holds it until then). If a later
batch fails after an earlier one was sent, the caller's retry resends everything and
duplicate detection (deterministic message ids) drops the repeats.

There is no live namespace in this project's environment: the adapter is unit-tested with
the real SDK objects (`ServiceBusClient`, `ServiceBusSender`, `ServiceBusMessage`,
`ServiceBusMessageBatch`) with only the sender's network calls (link open, send) replaced;
the tests assert the batches and messages the SDK would put on the wire. The first live
run is the deployment smoke test (docs/operations).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar

from azure.core.exceptions import AzureError
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusMessageBatch,
    ServiceBusSender,
)
from azure.servicebus.exceptions import MessageSizeExceededError

from shared.bus.port import BusError, MessageTooLargeError, OutgoingMessage
from shared.settings import BusSettings

T = TypeVar("T")

_CLIENTS: dict[tuple[str | None, str | None, str | None], ServiceBusClient] = {}
_CLIENTS_LOCK = threading.Lock()


def build_client(settings: BusSettings, **client_kwargs: Any) -> ServiceBusClient:
    """A new ServiceBusClient for the settings (no network traffic until first use)."""
    if settings.connection_string:
        return ServiceBusClient.from_connection_string(settings.connection_string, **client_kwargs)
    return ServiceBusClient(
        fully_qualified_namespace=_namespace(settings),
        credential=_credential(settings),
        **client_kwargs,
    )


def build_admin_client(settings: BusSettings) -> Any:
    """A ServiceBusAdministrationClient (runtime properties for `syncctl bus status`).

    With identity, reading runtime properties needs Manage rights on the namespace (Azure
    Service Bus Data Owner); the app's own Sender/Receiver roles are not enough.
    """
    from azure.servicebus.management import ServiceBusAdministrationClient

    if settings.connection_string:
        return ServiceBusAdministrationClient.from_connection_string(settings.connection_string)
    return ServiceBusAdministrationClient(_namespace(settings), _credential(settings))


def _namespace(settings: BusSettings) -> str:
    if not settings.fully_qualified_namespace:
        raise BusError(
            "Service Bus needs ServiceBusConnection (connection string) or "
            "ServiceBusConnection__fullyQualifiedNamespace (managed identity)"
        )
    return settings.fully_qualified_namespace


def _credential(settings: BusSettings) -> Any:
    from azure.identity import DefaultAzureCredential

    return (
        DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)
        if settings.managed_identity_client_id
        else DefaultAzureCredential()
    )


def shared_client(settings: BusSettings) -> ServiceBusClient:
    """The process-wide client for these connection settings (created on first use)."""
    key = (
        settings.connection_string,
        settings.fully_qualified_namespace,
        settings.managed_identity_client_id,
    )
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = build_client(settings)
        return client


def close_shared_clients() -> None:
    """Close every process-wide client (process shutdown, tests)."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            client.close()
        _CLIENTS.clear()


def to_service_bus_message(message: OutgoingMessage, enqueue_at: datetime | None = None) -> ServiceBusMessage:
    """The SDK message for one OutgoingMessage (ids, routing properties, TTL, schedule)."""
    scheduled = enqueue_at or message.scheduled_enqueue_time_utc
    if scheduled is not None and scheduled.tzinfo is None:
        raise BusError(f"message {message.message_id!r}: scheduled time must carry a time zone")
    return ServiceBusMessage(
        bytes(message.body),
        message_id=message.message_id,
        subject=message.subject,
        application_properties=dict(message.application_properties) or None,  # type: ignore[arg-type]
        correlation_id=message.correlation_id,
        content_type=message.content_type,
        time_to_live=message.time_to_live,
        scheduled_enqueue_time_utc=scheduled,
    )


class ServiceBusPublisher:
    """BusPublisher on Azure Service Bus (see module docstring)."""

    def __init__(self, settings: BusSettings, *, client: ServiceBusClient | None = None) -> None:
        self._settings = settings
        self._client = client if client is not None else shared_client(settings)
        self._senders: dict[str, ServiceBusSender] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------
    @contextmanager
    def _sender(self, topic: str) -> Iterator[ServiceBusSender]:
        with self._guard:
            lock = self._locks.setdefault(topic, threading.Lock())
        with lock:
            sender = self._senders.get(topic)
            if sender is None:
                sender = self._senders[topic] = self._client.get_topic_sender(topic_name=topic)
            yield sender

    @staticmethod
    def _call(what: str, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except MessageTooLargeError:
            raise
        except MessageSizeExceededError as exc:
            raise MessageTooLargeError(f"{what}: {exc}") from exc
        except AzureError as exc:  # ServiceBusError, ClientAuthenticationError, ...
            raise BusError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: handler shut down
            raise BusError(f"{what} failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _batches(
        sender: ServiceBusSender, messages: Sequence[ServiceBusMessage]
    ) -> list[ServiceBusMessageBatch]:
        batches: list[ServiceBusMessageBatch] = []
        batch = sender.create_message_batch()
        for message in messages:
            try:
                batch.add_message(message)
                continue
            except MessageSizeExceededError:
                if len(batch) == 0:
                    raise MessageTooLargeError(
                        f"message {message.message_id!r} does not fit in a Service Bus batch "
                        f"({batch.max_size_in_bytes} bytes)"
                    ) from None
            batches.append(batch)
            batch = sender.create_message_batch()
            try:
                batch.add_message(message)
            except MessageSizeExceededError:
                raise MessageTooLargeError(
                    f"message {message.message_id!r} does not fit in a Service Bus batch "
                    f"({batch.max_size_in_bytes} bytes)"
                ) from None
        if len(batch):
            batches.append(batch)
        return batches

    def _send(self, topic: str, messages: Sequence[ServiceBusMessage]) -> None:
        if not messages:
            return
        with self._sender(topic) as sender:
            try:
                batches = self._call(
                    f"preparing batches for topic {topic!r}", lambda: self._batches(sender, messages)
                )
                for batch in batches:
                    self._call(f"sending to topic {topic!r}", functools.partial(sender.send_messages, batch))
            except MessageTooLargeError:
                raise
            except BusError:
                # The SDK shuts a handler down after an unexpected error; start afresh next time.
                self._discard(topic, sender)
                raise

    def _discard(self, topic: str, sender: ServiceBusSender) -> None:
        if self._senders.get(topic) is sender:
            del self._senders[topic]
        with suppress(AzureError):
            sender.close()

    # -- BusPublisher ----------------------------------------------------------------------
    def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self._send(topic, [to_service_bus_message(m) for m in messages])

    def publish_scheduled(
        self, topic: str, messages: Sequence[OutgoingMessage], enqueue_at: datetime
    ) -> None:
        if enqueue_at.tzinfo is None:
            raise BusError("enqueue_at must carry a time zone (UTC)")
        self._send(topic, [to_service_bus_message(m, enqueue_at) for m in messages])

    def check(self) -> None:
        """Open (and close) a link to the change topic: proves name resolution, auth, entity."""
        topic = self._settings.brightpearl_changes_topic

        def probe() -> None:
            with self._client.get_topic_sender(topic_name=topic) as sender:
                sender.create_message_batch()

        self._call(f"connecting to topic {topic!r}", probe)

    def close(self) -> None:
        """Close this publisher's senders (the process-wide client stays open)."""
        with self._guard:
            senders, self._senders = list(self._senders.values()), {}
        for sender in senders:
            try:
                sender.close()
            except AzureError:  # closing a broken link must not mask the caller's work
                continue
