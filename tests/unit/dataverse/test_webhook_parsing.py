"""Webhook parsing: sample RemoteExecutionContext bodies -> exactly the expected change notices."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.dataverse.webhook import WebhookRejected, parse_ms_date, parse_webhook
from shared.events import Envelope

SAMPLES = Path(__file__).parent / "samples"
ORG = "a3b1c2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def headers(entity: str, message: str, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "x-ms-dynamics-entity-name": entity,
        "x-ms-dynamics-request-name": message,
        **extra,
    }


def test_update_sample_produces_one_updated_notice_with_attribute_names_only():
    [notice] = parse_webhook(sample("update_contact.json"), headers("contact", "Update"), organization_id=ORG)
    assert notice.model_dump(mode="json") == {
        "system": "dataverse",
        "entity": "contact",
        "ids": ["1f4f6c1e-2a3b-4c5d-8e9f-a0b1c2d3e4f5"],
        "operation": "updated",
        "observed_at": "2017-09-26T07:04:08Z",
        "source": f"/dataverse/{ORG}",
        "origin": "webhook",
        "version": "0b4e5c1a-9d2f-4e3b-a1c0-d2e3f4a5b6c7",
        "detail": {
            "changed_attributes": ["creditlimit", "firstname", "parentcustomerid", "statuscode"],
            "initiating_user": "9f2d7c2e-3f5c-4f0b-8f64-1a2b3c4d5e6f",
            "message": "Update",
            "depth": 1,
        },
    }
    assert "James" not in json.dumps(notice.model_dump(mode="json"))  # names, never values


def test_create_sample_takes_the_id_from_primary_entity_id():
    [notice] = parse_webhook(sample("create_account.json"), headers("account", "Create"))
    assert (notice.entity, notice.ids, notice.operation) == (
        "account",
        ("b7c8d9e0-f1a2-4b3c-8d4e-5f6a7b8c9d0e",),
        "created",
    )
    assert notice.detail["changed_attributes"] == ["name", "ownerid", "telephone1"]
    assert notice.detail["initiating_user"] == "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
    assert notice.observed_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


def test_delete_sample_has_no_changed_attributes():
    [notice] = parse_webhook(sample("delete_contact.json"), headers("contact", "Delete"))
    assert notice.operation == "deleted"
    assert notice.ids == ("1f4f6c1e-2a3b-4c5d-8e9f-a0b1c2d3e4f5",)
    assert notice.detail == {
        "changed_attributes": None,
        "initiating_user": "9f2d7c2e-3f5c-4f0b-8f64-1a2b3c4d5e6f",
        "message": "Delete",
        "depth": 2,
    }


def test_size_exceeded_payload_still_yields_a_notice():
    body = sample("update_size_exceeded.json")
    [notice] = parse_webhook(
        body, headers("contact", "Update", **{"x-ms-dynamics-msg-size-exceeded": "true"})
    )
    assert notice.operation == "updated" and notice.ids == ("1f4f6c1e-2a3b-4c5d-8e9f-a0b1c2d3e4f5",)
    assert notice.detail["changed_attributes"] is None and notice.detail["size_exceeded"] is True
    with pytest.raises(WebhookRejected) as exc:  # without the header a missing Target is an error
        parse_webhook(body, headers("contact", "Update"))
    assert exc.value.status == 400 and "Target" in exc.value.problem


def test_redelivery_gives_the_same_message_id_and_new_operations_differ():
    body = sample("update_contact.json")
    first = Envelope.wrap(parse_webhook(body, {})[0]).to_message()
    again = Envelope.wrap(parse_webhook(body, {})[0]).to_message()
    assert first.message_id == again.message_id
    other = json.loads(body)
    other["OperationId"] = "11111111-2222-4333-8444-555555555555"
    assert (
        Envelope.wrap(parse_webhook(json.dumps(other).encode(), {})[0]).to_message().message_id
        != first.message_id
    )


def _mutated(**changes) -> bytes:
    data = json.loads(sample("update_contact.json"))
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("body", "hdrs", "status", "fragment"),
    [
        (b"not json", {}, 400, "not JSON"),
        (b"[1,2]", {}, 400, "JSON object"),
        (_mutated(PrimaryEntityId="not-a-guid"), {}, 400, "PrimaryEntityId"),
        (_mutated(MessageName=...), {}, 400, "MessageName"),
        (_mutated(OperationCreatedOn="2017-09-26"), {}, 400, "OperationCreatedOn"),
        (_mutated(Depth=0), {}, 400, "Depth"),
        (_mutated(MessageName="Assign"), {}, 422, "Assign"),
        (_mutated(PrimaryEntityName="account"), {}, 400, "LogicalName"),
        (
            sample("update_contact.json"),
            {"x-ms-dynamics-entity-name": "account"},
            400,
            "x-ms-dynamics-entity-name",
        ),
        (
            sample("update_contact.json"),
            {"x-ms-dynamics-request-name": "Create"},
            400,
            "x-ms-dynamics-request-name",
        ),
        (sample("update_contact.json"), {"Content-Type": "text/plain"}, 415, "Content-Type"),
    ],
)
def test_malformed_bodies_are_rejected_naming_the_problem(body, hdrs, status, fragment):
    with pytest.raises(WebhookRejected) as exc:
        parse_webhook(body, hdrs)
    assert exc.value.status == status
    assert fragment in exc.value.problem


def test_unknown_organization_is_rejected_when_configured():
    with pytest.raises(WebhookRejected) as exc:
        parse_webhook(
            sample("update_contact.json"), {}, organization_id="00000000-0000-4000-8000-000000000001"
        )
    assert exc.value.status == 403 and "OrganizationId" in exc.value.problem
    assert parse_webhook(sample("update_contact.json"), {}, organization_id=ORG.upper())


def test_oversized_body_is_rejected():
    with pytest.raises(WebhookRejected) as exc:
        parse_webhook(b"{" + b" " * 3000 + b"}", {}, max_body_bytes=2048)
    assert exc.value.status == 413


def test_ms_dates_are_utc_milliseconds():
    assert parse_ms_date("/Date(0)/") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_ms_date("/Date(1506409448000-0700)/") == datetime(2017, 9, 26, 7, 4, 8, tzinfo=UTC)


def test_both_receivers_reject_with_the_one_webhook_error_and_a_reason_code():
    from shared.brightpearl import webhook as brightpearl_webhook
    from shared.webhooks import WebhookRejected as Shared

    assert WebhookRejected is Shared and brightpearl_webhook.WebhookRejected is Shared
    with pytest.raises(Shared) as exc:
        parse_webhook(b'{"MessageName": "Update"}', headers("contact", "Update"), organization_id=ORG)
    assert exc.value.status in (400, 403, 422) and exc.value.code != "Rejected"
    assert exc.value.as_dict() == {"error": exc.value.code, "message": exc.value.message}
