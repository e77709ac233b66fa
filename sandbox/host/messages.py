"""Service Bus trigger payloads shaped exactly as the SDK-type binding delivers them.

The Functions host sends the worker a `model_binding_data` whose content is
`lock token (UUID, little-endian bytes) + b"x-opt-lock-token" + the AMQP-encoded message`.
We build those bytes from a local-bus message with uamqp and decode them through the
extension's own converter, so the function receives a genuine
`azure.servicebus.ServiceBusReceivedMessage` (application property keys as bytes, lock
token set). Functions annotated with the classic `func.ServiceBusMessage` get the object
the Python worker builds for that path instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import azure.functions.servicebus as func_servicebus
from azurefunctions.extensions.base import Datum
from azurefunctions.extensions.bindings.servicebus import ServiceBusConverter
from uamqp import Message as AmqpMessage
from uamqp.message import MessageHeader, MessageProperties

from shared.bus.local import LockedMessage

LOCK_TOKEN_MARKER = b"x-opt-lock-token"
MODEL_BINDING_SOURCE = "AzureServiceBusReceivedMessage"
MODEL_BINDING_CONTENT_TYPE = "application/octet-stream"

# Assumption (UNCONFIRMED in the extension docs): the header carries the Service Bus
# DeliveryCount as the broker reports it to the host (1 on first delivery), so
# `message.delivery_count` equals the local bus's delivery count.


# What the local host delivers: a message it received (peek-locked) from the local bus.
BusMessage = LockedMessage


@dataclass(frozen=True)
class ModelBindingData:
    """The fields of the worker's ModelBindingData protobuf the extension reads."""

    content: bytes
    version: str = "1.0"
    source: str = MODEL_BINDING_SOURCE
    content_type: str = MODEL_BINDING_CONTENT_TYPE


@dataclass(frozen=True)
class CollectionModelBindingData:
    model_binding_data: list[ModelBindingData]


def _epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def encode_binding_content(message: BusMessage) -> bytes:
    """The model_binding_data content the host would send for this message."""
    if message.locked_until is None:
        raise ValueError(f"message {message.message_id} was peeked, not received: it holds no lock")
    properties = MessageProperties(
        message_id=message.message_id,
        subject=message.subject,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        encoding="UTF-8",
    )
    header = MessageHeader()
    header.delivery_count = message.delivery_count
    header.durable = True
    if message.time_to_live is not None:
        header.time_to_live = int(message.time_to_live.total_seconds() * 1000)
    annotations: dict[bytes, Any] = {
        b"x-opt-enqueued-time": _epoch_ms(message.enqueued_time_utc),
        b"x-opt-sequence-number": message.sequence_number,
        b"x-opt-locked-until": _epoch_ms(message.locked_until),
    }
    if message.scheduled_enqueue_time_utc is not None:
        annotations[b"x-opt-scheduled-enqueue-time"] = _epoch_ms(message.scheduled_enqueue_time_utc)
    if message.dead_letter_source:
        annotations[b"x-opt-deadletter-source"] = message.dead_letter_source
    application_properties: dict[str, Any] = dict(message.application_properties or {})
    # Service Bus carries dead-letter details as application properties.
    if message.dead_letter_reason is not None:
        application_properties["DeadLetterReason"] = message.dead_letter_reason
    if message.dead_letter_error_description is not None:
        application_properties["DeadLetterErrorDescription"] = message.dead_letter_error_description
    amqp = AmqpMessage(
        body=bytes(message.body),
        properties=properties,
        header=header,
        application_properties=application_properties,
        annotations=annotations,
    )
    lock_token = uuid.UUID(str(message.lock_token))
    return lock_token.bytes_le + LOCK_TOKEN_MARKER + amqp.encode_message()


def to_sdk_messages(messages: Sequence[BusMessage], *, many: bool) -> Any:
    """Decode through the extension's converter: one ServiceBusReceivedMessage or a list."""
    items = [ModelBindingData(content=encode_binding_content(m)) for m in messages]
    if many:
        datum = Datum(
            value=CollectionModelBindingData(model_binding_data=items), type="collection_model_binding_data"
        )
    else:
        if len(items) != 1:
            raise ValueError("a single-message trigger takes exactly one message")
        datum = Datum(value=items[0], type="model_binding_data")
    return ServiceBusConverter.decode(datum, trigger_metadata=None, pytype=None)


# The classic message's keyword arguments that take the bus message's attribute of the same name.
CLASSIC_SAME_NAMED = (
    "message_id",
    "content_type",
    "correlation_id",
    "dead_letter_error_description",
    "dead_letter_reason",
    "dead_letter_source",
    "delivery_count",
    "enqueued_time_utc",
    "expires_at_utc",
    "subject",
    "locked_until",
    "scheduled_enqueue_time_utc",
    "sequence_number",
    "time_to_live",
)


def to_functions_message(message: BusMessage) -> func_servicebus.ServiceBusMessage:
    """The classic azure.functions ServiceBusMessage the worker builds without the extension."""
    properties = dict(message.application_properties or {})
    return func_servicebus.ServiceBusMessage(
        body=bytes(message.body),
        application_properties=properties,
        user_properties=properties,
        label=message.subject,
        lock_token=str(message.lock_token),
        **{name: getattr(message, name) for name in CLASSIC_SAME_NAMED},
    )
