"""The Service Bus adapter, with real SDK objects and only the sender's network calls replaced.

No live namespace exists here: `ServiceBusSender._open` (link attach) and `_send` (the AMQP
transfer) are replaced by a recorder; everything else (client, sender, message, batch
sizing, scheduling annotations) is the real azure-servicebus code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import azure.identity
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DefaultAzureCredential
from azure.servicebus import ServiceBusClient, ServiceBusMessageBatch
from azure.servicebus.exceptions import ServiceBusConnectionError

from shared.bus import servicebus
from shared.bus.port import BusError, BusPublisher, MessageTooLargeError, OutgoingMessage
from shared.bus.servicebus import ServiceBusPublisher, build_client, shared_client
from shared.settings import BusSettings
from tests.unit.bus.conftest import STANDARD_BATCH, Wire

CONN = (
    "Endpoint=sb://sandbox-ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey=ZmFrZS1rZXktZm9yLXVuaXQtdGVzdHMtb25seQ=="
)


@pytest.fixture
def publisher(wire: Wire) -> ServiceBusPublisher:
    settings = BusSettings.model_validate({"ServiceBusConnection": CONN})
    client = ServiceBusClient.from_connection_string(CONN, retry_total=0)
    pub = ServiceBusPublisher(settings, client=client)
    yield pub  # type: ignore[misc]
    pub.close()
    client.close()


def notice(i: int, size: int = 64, **kwargs: Any) -> OutgoingMessage:
    return OutgoingMessage(
        body=b"{" + b"x" * size + b"}",
        message_id=f"id-{i}",
        application_properties={"entity": "contact", "operation": "updated", "attempt": 1},
        subject="brightpearl/contact/updated",
        correlation_id=f"corr-{i}",
        **kwargs,
    )


def test_publisher_implements_the_port(publisher: ServiceBusPublisher) -> None:
    assert isinstance(publisher, BusPublisher)


def test_publish_sends_one_batch_with_ids_properties_and_headers(
    publisher: ServiceBusPublisher, wire: Wire
) -> None:
    publisher.publish("brightpearl-changes", [notice(1, time_to_live=timedelta(hours=2)), notice(2)])
    [batch] = wire.batches("brightpearl-changes")
    first, second = batch
    assert [first.message_id, second.message_id] == ["id-1", "id-2"]
    assert first.application_properties == {"entity": "contact", "operation": "updated", "attempt": 1}
    assert first.subject == "brightpearl/contact/updated"
    assert first.correlation_id == "corr-1"
    assert first.content_type == "application/cloudevents+json; charset=utf-8"
    assert first.time_to_live == timedelta(hours=2)
    assert second.time_to_live is None
    assert b"".join(first.body) == b"{" + b"x" * 64 + b"}"
    assert first.scheduled_enqueue_time_utc is None


def test_messages_are_split_across_batches_when_one_fills(publisher: ServiceBusPublisher, wire: Wire) -> None:
    messages = [notice(i, size=100 * 1024) for i in range(5)]  # ~100 KB each, 256 KB batches
    publisher.publish("brightpearl-changes", messages)
    batches = wire.batches("brightpearl-changes")
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [m.message_id for b in batches for m in b] == [f"id-{i}" for i in range(5)]
    for _, obj in wire.sent:
        assert isinstance(obj, ServiceBusMessageBatch)
        assert obj.size_in_bytes <= STANDARD_BATCH


def test_one_message_too_big_for_an_empty_batch_is_refused_before_sending(
    publisher: ServiceBusPublisher, wire: Wire
) -> None:
    with pytest.raises(MessageTooLargeError, match="id-1"):
        publisher.publish("brightpearl-changes", [notice(0), notice(1, size=STANDARD_BATCH)])
    assert wire.sent == []


def test_publish_scheduled_sets_the_enqueue_time_on_every_message(
    publisher: ServiceBusPublisher, wire: Wire
) -> None:
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    publisher.publish_scheduled("dataverse-changes", [notice(1), notice(2)], at)
    [batch] = wire.batches("dataverse-changes")
    for message in batch:
        assert message.scheduled_enqueue_time_utc == at
        annotations = message.raw_amqp_message.annotations
        assert annotations[b"x-opt-scheduled-enqueue-time"] == at  # what the broker reads
    with pytest.raises(BusError, match="time zone"):
        publisher.publish_scheduled("dataverse-changes", [notice(3)], datetime(2026, 3, 1))


def test_message_level_schedule_is_honoured_by_publish(publisher: ServiceBusPublisher, wire: Wire) -> None:
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    publisher.publish("dataverse-changes", [notice(1, scheduled_enqueue_time_utc=at)])
    [[message]] = wire.batches("dataverse-changes")
    assert message.scheduled_enqueue_time_utc == at


def test_one_sender_per_topic_is_reused(publisher: ServiceBusPublisher, wire: Wire) -> None:
    publisher.publish("brightpearl-changes", [notice(1)])
    publisher.publish("brightpearl-changes", [notice(2)])
    publisher.publish("dataverse-changes", [notice(3)])
    assert wire.opens == 2
    assert publisher.publish("brightpearl-changes", []) is None
    assert len(wire.sent) == 3


@pytest.mark.parametrize(
    "error",
    [ServiceBusConnectionError(message="link detached"), ClientAuthenticationError("token refused")],
)
def test_sdk_errors_become_bus_errors(publisher: ServiceBusPublisher, wire: Wire, error: Exception) -> None:
    wire.fail_with = error
    with pytest.raises(BusError, match="brightpearl-changes") as info:
        publisher.publish("brightpearl-changes", [notice(1)])
    assert not isinstance(info.value, MessageTooLargeError)
    chain, cause = [], info.value.__cause__
    while cause is not None:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert error in chain
    wire.fail_with = None  # the fault clears: the next publish works on a fresh sender
    publisher.publish("brightpearl-changes", [notice(2)])
    assert [[m.message_id for m in b] for b in wire.batches("brightpearl-changes")] == [["id-2"]]


def test_check_opens_a_link_and_reports_failures(publisher: ServiceBusPublisher, wire: Wire) -> None:
    publisher.check()
    assert wire.opens == 1
    wire.fail_with = ServiceBusConnectionError(message="no route to host")
    with pytest.raises(BusError, match="connecting to topic 'brightpearl-changes'"):
        publisher.check()


def test_connection_string_client_targets_its_namespace() -> None:
    settings = BusSettings.model_validate({"ServiceBusConnection": CONN})
    client = build_client(settings)
    assert client.fully_qualified_namespace == "sandbox-ns.servicebus.windows.net"
    client.close()


def test_identity_client_uses_default_credential_with_the_managed_identity_client_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[dict[str, Any]] = []

    class SpyCredential(DefaultAzureCredential):
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", SpyCredential)
    settings = BusSettings.model_validate({
        "ServiceBusConnection__fullyQualifiedNamespace": "prod-ns.servicebus.windows.net",
        "ServiceBusConnection__clientId": "00000000-1111-2222-3333-444444444444",
    })
    client = build_client(settings)
    assert client.fully_qualified_namespace == "prod-ns.servicebus.windows.net"
    assert isinstance(client._credential, SpyCredential)
    assert made == [{"managed_identity_client_id": "00000000-1111-2222-3333-444444444444"}]
    client.close()
    made.clear()
    build_client(BusSettings.model_validate(
        {"ServiceBusConnection__fullyQualifiedNamespace": "prod-ns.servicebus.windows.net"}
    )).close()
    assert made == [{}]


def test_one_client_per_process_and_connection() -> None:
    settings = BusSettings.model_validate({"ServiceBusConnection": CONN})
    try:
        assert shared_client(settings) is shared_client(settings)
        other = BusSettings.model_validate({"ServiceBusConnection": CONN.replace("sandbox-ns", "other-ns")})
        assert shared_client(other) is not shared_client(settings)
    finally:
        servicebus.close_shared_clients()
