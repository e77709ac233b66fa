"""The bus port: what the integration needs from a message broker, independent of Azure.

Two adapters implement it: `shared.bus.servicebus` (Azure Service Bus through the
azure-servicebus SDK) and `shared.bus.local` (the sandbox's durable local bus with Service
Bus semantics). Production code depends only on this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

# Application property values Service Bus accepts and SQL filters can compare.
PropertyValue = str | int | float | bool | None

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish to a topic.

    `message_id` is deterministic (see shared.events) so duplicate detection drops
    re-deliveries; `application_properties` carry the routing keys subscription rules
    filter on (entity, operation, source_system, replay_to).
    """

    body: bytes
    message_id: str
    application_properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    subject: str | None = None
    content_type: str = CLOUDEVENTS_CONTENT_TYPE
    correlation_id: str | None = None
    scheduled_enqueue_time_utc: datetime | None = None
    time_to_live: timedelta | None = None


class BusError(Exception):
    """A publish or settlement operation failed at the broker (transient unless stated)."""


class MessageTooLargeError(BusError):
    """One message exceeds the broker's size limit on its own; it can never be sent."""


@runtime_checkable
class BusPublisher(Protocol):
    """Publishes messages to topics. Implementations batch as the broker allows."""

    def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Send all `messages` to `topic` now (in as few broker batches as fit)."""

    def publish_scheduled(
        self, topic: str, messages: Sequence[OutgoingMessage], enqueue_at: datetime
    ) -> None:
        """Send `messages` to `topic`, to become visible to receivers at `enqueue_at` (UTC)."""

    def check(self) -> None:
        """Raise BusError if the broker cannot be reached (used by the health endpoint)."""

    def close(self) -> None:
        """Release connections."""


def message_body(message: Any) -> bytes:
    """The body bytes of an azure.servicebus ServiceBusReceivedMessage (or func.ServiceBusMessage)."""
    if hasattr(message, "get_body"):
        whole: bytes = message.get_body()
        return whole
    body = message.body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return b"".join(bytes(part) for part in body)
