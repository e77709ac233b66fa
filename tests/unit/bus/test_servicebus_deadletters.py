"""Dead-letter operations on the Service Bus adapter, with messages decoded from real AMQP bytes.

No live namespace: received messages are `ServiceBusReceivedMessage`s built from AMQP
payloads encoded and decoded by the SDK's own codec (so application properties arrive as
bytes, bodies as generators, DeadLetterReason in the properties, exactly as off the wire);
the DLQ receiver is a stand-in that serves them, and the topic sender is the real
`ServiceBusSender` with only its network calls replaced (the `wire` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusSubQueue,
)
from azure.servicebus._pyamqp._decode import decode_payload
from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._pyamqp.message import Header, Message, Properties
from azure.servicebus._pyamqp.types import TYPE, VALUE, AMQPTypes
from azure.servicebus.exceptions import MessageLockLostError as SdkLockLost

from shared.bus.deadletters import ServiceBusDeadLetters, select
from shared.bus.port import BusError
from tests.unit.bus.conftest import Wire

CONN = (
    "Endpoint=sb://sandbox-ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=ZmFrZS1rZXktZm9yLXVuaXQtdGVzdHMtb25seQ=="
)
TOPIC, SUB = "brightpearl-changes", "customers-to-dataverse"


def received(
    sequence: int, message_id: str, reason: str, entity: str = "contact"
) -> ServiceBusReceivedMessage:
    amqp = Message(
        data=[b'{"ids":["' + message_id.encode() + b'"]}'],
        header=Header(delivery_count=1),
        properties=Properties(message_id=message_id, subject=f"brightpearl/{entity}/updated",
                              correlation_id=f"corr-{message_id}", content_type="application/json"),
        application_properties={
            "entity": entity,
            "attempt": 2,
            "replay_to": "stale-flow",
            "DeadLetterReason": reason,
            "DeadLetterErrorDescription": f"{message_id}: fix me",
        },
        message_annotations={
            "x-opt-sequence-number": {TYPE: AMQPTypes.long, VALUE: sequence},
            "x-opt-enqueued-time": {TYPE: AMQPTypes.timestamp, VALUE: 1767603600000 + sequence},
        },
    )
    buffer = bytearray()
    encode_payload(buffer, amqp)
    return ServiceBusReceivedMessage(decode_payload(memoryview(buffer)), receiver=object())


class DeadLetterQueue:
    """Serves messages like a DLQ receiver: peek by sequence, peek-lock receive, settle."""

    def __init__(self, messages: list[ServiceBusReceivedMessage]) -> None:
        self.messages = messages
        self.locked: set[int] = set()
        self.completed: list[str] = []
        self.abandoned: list[str] = []
        self.opened_with: dict[str, Any] = {}
        self.lose_lock_on: set[str] = set()

    def __enter__(self) -> DeadLetterQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def peek_messages(self, max_message_count: int = 1, sequence_number: int = 0) -> list:
        return [m for m in self.messages if m.sequence_number >= sequence_number][:max_message_count]

    def receive_messages(self, max_message_count: int = 1, max_wait_time: float | None = None) -> list:
        out = [m for m in self.messages if id(m) not in self.locked][:max_message_count]
        self.locked.update(id(m) for m in out)
        return out

    def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        if message.message_id in self.lose_lock_on:
            raise SdkLockLost(message="lock expired")
        self.messages.remove(message)
        self.completed.append(message.message_id)

    def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        self.locked.discard(id(message))
        self.abandoned.append(message.message_id)


@pytest.fixture
def dlq(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServiceBusDeadLetters, DeadLetterQueue]]:
    queue = DeadLetterQueue([
        received(5, "m5", "ValidationFailed"),
        received(6, "m6", "RetriesExhausted"),
        received(9, "m9", "RetriesExhausted"),
    ])
    client = ServiceBusClient.from_connection_string(CONN, retry_total=0)

    def get_subscription_receiver(**kwargs: Any) -> DeadLetterQueue:
        queue.opened_with = kwargs
        return queue

    monkeypatch.setattr(client, "get_subscription_receiver", get_subscription_receiver)
    ops = ServiceBusDeadLetters(None, client=client, max_wait_time=0.1)
    yield ops, queue
    client.close()


def test_list_reads_the_dead_letter_subqueue_and_decodes_wire_types(dlq) -> None:  # type: ignore[no-untyped-def]
    ops, queue = dlq
    items = ops.list(TOPIC, SUB)
    assert queue.opened_with["sub_queue"] == ServiceBusSubQueue.DEAD_LETTER
    assert (queue.opened_with["topic_name"], queue.opened_with["subscription_name"]) == (TOPIC, SUB)
    assert [i.message_id for i in items] == ["m5", "m6", "m9"]
    first = items[0]
    assert (first.reason, first.description, first.sequence_number) == ("ValidationFailed", "m5: fix me", 5)
    assert first.entity == "contact" and first.application_properties["attempt"] == 2
    assert first.body == b'{"ids":["m5"]}'
    assert first.correlation_id == "corr-m5"
    assert [i.message_id for i in ops.list(TOPIC, SUB, select(reason="RetriesExhausted"))] == ["m6", "m9"]


def test_resubmit_sends_replay_copies_then_completes_originals(dlq, wire: Wire) -> None:  # type: ignore[no-untyped-def]
    ops, queue = dlq
    outcomes = ops.resubmit(TOPIC, SUB, select(reason="RetriesExhausted"))
    assert [o.action for o in outcomes] == ["resubmitted", "resubmitted"]
    sent = [obj for entity, obj in wire.sent if entity == TOPIC]
    assert all(isinstance(m, ServiceBusMessage) for m in sent)
    assert [m.message_id.split(".r")[0] for m in sent] == ["m6", "m9"]
    for message, outcome in zip(sent, outcomes, strict=True):
        assert message.message_id == outcome.new_message_id
        assert message.application_properties == {"entity": "contact", "attempt": 2, "replay_to": SUB}
        assert message.subject == "brightpearl/contact/updated"
        assert message.content_type == "application/json"
    assert queue.completed == ["m6", "m9"]
    assert queue.abandoned == ["m5"]  # skipped during the scan, released at the end
    assert [m.message_id for m in queue.messages] == ["m5"]


def test_dry_run_only_peeks(dlq, wire: Wire) -> None:  # type: ignore[no-untyped-def]
    ops, queue = dlq
    outcomes = ops.resubmit(TOPIC, SUB, select(all_messages=True), dry_run=True)
    assert [o.action for o in outcomes] == ["would resubmit"] * 3
    assert wire.sent == [] and queue.completed == [] and queue.locked == set()


def test_lost_lock_after_sending_is_reported_not_hidden(dlq, wire: Wire) -> None:  # type: ignore[no-untyped-def]
    ops, queue = dlq
    queue.lose_lock_on = {"m5"}
    outcomes = ops.resubmit(TOPIC, SUB, select(message_ids=["m5"]))
    assert [o.action for o in outcomes] == ["copy sent, original kept"]
    assert "lock" in (outcomes[0].note or "")
    assert [m.message_id for m in queue.messages] == ["m5", "m6", "m9"]


def test_purge_completes_only_the_selection(dlq) -> None:  # type: ignore[no-untyped-def]
    ops, queue = dlq
    outcomes = ops.purge(TOPIC, SUB, select(message_ids=["m9"]))
    assert [o.dead_letter.message_id for o in outcomes] == ["m9"]
    assert [m.message_id for m in queue.messages] == ["m5", "m6"]


def test_send_failure_becomes_a_bus_error_and_keeps_the_original(dlq, wire: Wire) -> None:  # type: ignore[no-untyped-def]
    from azure.servicebus.exceptions import ServiceBusConnectionError

    ops, queue = dlq
    wire.fail_with = ServiceBusConnectionError(message="link detached")
    with pytest.raises(BusError, match="link detached"):
        ops.resubmit(TOPIC, SUB, select(all_messages=True))
    assert queue.completed == []
    assert len(queue.messages) == 3
