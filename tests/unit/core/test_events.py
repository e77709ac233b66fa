"""Change-notice envelopes: CloudEvents shape, deterministic ids, strict parsing."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.events import ChangeNotice, Envelope, EnvelopeError


def notice(**overrides):
    base = dict(
        system="brightpearl",
        entity="contact",
        ids=("207", "208"),
        operation="updated",
        observed_at=datetime(2026, 11, 1, 10, 20, 41, tzinfo=UTC),
        source="/brightpearl/acme",
        version="contact.modified@2026-11-01T10:20:41+00:00",
    )
    base.update(overrides)
    return ChangeNotice(**base)


def test_same_change_gets_the_same_id_and_a_new_change_a_new_id():
    assert notice().key == notice().key
    assert notice(ids=("208", "207")).key == notice().key  # order of ids does not matter
    assert notice(version="contact.modified@2026-11-01T10:25:00+00:00").key != notice().key
    assert notice(ids=("207",)).key != notice().key
    assert notice(source="/brightpearl/other").key != notice().key


def test_envelope_is_structured_cloudevents_with_routing_properties():
    env = Envelope.wrap(notice())
    msg = env.to_message()
    body = json.loads(msg.body)
    assert body["specversion"] == "1.0"
    assert body["id"] == env.id == msg.message_id
    assert body["source"] == "/brightpearl/acme"
    assert body["type"].endswith(".v1") and body["schemaversion"] == 1
    assert body["time"] == "2026-11-01T10:20:41Z"
    assert body["data"]["ids"] == ["207", "208"]
    assert msg.application_properties["entity"] == "contact"
    assert msg.application_properties["source_system"] == "brightpearl"
    assert msg.application_properties["operation"] == "updated"
    assert "replay_to" not in msg.application_properties
    assert msg.content_type.startswith("application/cloudevents+json")


def test_round_trip_and_retry_copy():
    env = Envelope.wrap(notice())
    parsed = Envelope.from_body(env.to_message().body)
    assert parsed == env
    retry = parsed.retry("customers-to-dataverse")
    msg = retry.to_message()
    assert retry.attempt == 2
    assert msg.application_properties["replay_to"] == "customers-to-dataverse"
    assert msg.message_id != env.id  # else duplicate detection would drop the retry copy
    again = Envelope.from_body(msg.body)
    assert again.attempt == 2 and again.replay_to == "customers-to-dataverse"
    assert again.id == env.id  # the idempotency key survives in the body


def test_times_are_normalised_to_utc_and_naive_times_rejected():
    local = notice(observed_at=datetime(2026, 11, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
    assert local.observed_at == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="time zone"):
        notice(observed_at=datetime(2026, 11, 1, 12, 0))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"specversion":"0.3"}', "specversion"),
        (b'{"specversion":"1.0","type":"other"}', "type must be"),
    ],
)
def test_malformed_bodies_are_rejected_with_a_clear_error(body, message):
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_body(body)


def test_bad_data_names_the_field():
    good = Envelope.wrap(notice()).to_cloudevent()
    good["data"]["ids"] = ["207", "drop table"]
    with pytest.raises(EnvelopeError, match=r"data\.ids"):
        Envelope.from_body(json.dumps(good))
    good["data"]["ids"] = []
    with pytest.raises(EnvelopeError, match=r"data\.ids"):
        Envelope.from_body(json.dumps(good))
    del good["data"]
    with pytest.raises(EnvelopeError, match="data"):
        Envelope.from_body(json.dumps(good))
