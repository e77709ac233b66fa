"""A webhook notice for an entity no flow consumes (a Brightpearl purchase-order or goods-out webhook, a
Dataverse table nobody maps) is audited as `ignored` and answered as such, instead of being
published where no subscription takes it and Service Bus drops it without a trace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import functions.ingress_dataverse as ingress_dataverse
from functions import ingress
from shared import runtime
from shared.bus.local import LocalBus
from shared.bus.sqlfilter import compile_filter
from shared.bus.topology import load_topology
from shared.routing import CONSUMED_ENTITIES, IGNORED_REASON
from shared.settings import load_settings
from shared.store import AuditResult, StateStore
from shared.store.errors import StoreError
from tests.unit.core.test_ingress import VALUES, RecordingPublisher, delivery
from tests.unit.dataverse.test_ingress_dataverse import SECRET as DV_SECRET
from tests.unit.dataverse.test_ingress_dataverse import settings as dataverse_settings

SAMPLE = json.loads((Path(__file__).parents[1] / "dataverse" / "samples" / "update_contact.json").read_text())
SYSTEM_OF_TOPIC_SETTING = {"BRIGHTPEARL_CHANGES_TOPIC": "brightpearl", "DATAVERSE_CHANGES_TOPIC": "dataverse"}
CANDIDATES = {
    *(e for entities in CONSUMED_ENTITIES.values() for e in entities),
    *("product", "order", "goods-out-note", "sales-credit", "salesorder", "incident", "invoice", "lead"),
}


class FailingAudit:
    def record_many(self, entries: Any) -> None:
        raise StoreError("table service unreachable")


class FailingStore:
    audit = FailingAudit()

    def check(self) -> None:
        raise StoreError("table service unreachable")


def post_brightpearl(**overrides: Any) -> tuple[int, dict[str, Any]]:
    req = func.HttpRequest(
        "POST",
        "http://127.0.0.1:7071/api/webhooks/brightpearl",
        headers={"content-type": "application/json"},
        body=json.dumps(delivery(**overrides)).encode(),
    )
    response = ingress.brightpearl_webhook(req)
    return response.status_code, json.loads(response.get_body())


def dataverse_request(entity: str) -> func.HttpRequest:
    body = json.loads(
        json.dumps(SAMPLE).replace('"contact"', f'"{entity}"').replace('"contactid"', f'"{entity}id"')
    )
    return func.HttpRequest(
        "POST",
        "http://127.0.0.1:7071/api/webhooks/dataverse",
        headers={
            "content-type": "application/json",
            "x-bpi-webhook-secret": DV_SECRET,
            "x-ms-dynamics-entity-name": entity,
            "x-ms-dynamics-request-name": "Update",
        },
        body=json.dumps(body).encode(),
    )


@pytest.fixture
def bus(tmp_path) -> Iterator[LocalBus]:
    local = LocalBus(tmp_path / "bus.sqlite3", load_topology())
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def wired(bus: LocalBus, state_store: StateStore) -> Iterator[tuple[LocalBus, StateStore]]:
    settings = load_settings(dict(VALUES))
    previous = ingress_dataverse.publisher_factory
    ingress_dataverse.publisher_factory = lambda _settings: bus
    try:
        with runtime.override(settings=settings, publisher=bus, state_store=state_store):
            yield bus, state_store
    finally:
        ingress_dataverse.publisher_factory = previous


def active_everywhere(bus: LocalBus) -> int:
    return sum(
        bus.counts(topic.name, sub.name).active
        for topic in load_topology().topics
        for sub in topic.subscriptions
    )


def test_the_consumed_entities_match_the_subscription_rules_of_the_topology():
    for topic in load_topology().topics:
        system = SYSTEM_OF_TOPIC_SETTING[topic.setting]
        taken = {
            entity
            for entity in CANDIDATES
            for sub in topic.subscriptions
            if compile_filter(sub.rule.sql_filter).matches(
                {"entity": entity, "operation": "updated", "source_system": system}, {}
            )
        }
        assert taken == CONSUMED_ENTITIES[system], f"shared/routing.py disagrees with {topic.name}'s rules"


def test_a_brightpearl_webhook_no_flow_consumes_is_audited_as_ignored_not_published(wired):
    bus, store = wired
    status, body = post_brightpearl(
        resourceType="purchase-order", fullEvent="purchase-order.modified.order-status", id="1001-1002"
    )
    assert status == 202
    assert body["ignored"] == 2 and body["accepted"] == 0 and body["notices"] == []
    assert body["reason"] == IGNORED_REASON
    assert "no flow consumes brightpearl purchase-order" in body["message"]
    assert active_everywhere(bus) == 0
    [entry] = store.audit.for_record("purchase-order", "brightpearl", "1001")
    assert entry.result is AuditResult.IGNORED and entry.reason_code == IGNORED_REASON
    assert entry.flow == ingress.INGRESS_FLOW and "1001" in entry.description
    assert sorted(e.source_id for e in store.audit.recent(ingress.INGRESS_FLOW)) == ["1001", "1002"]


def test_a_contact_webhook_is_still_published_to_its_flow(wired):
    bus, store = wired
    status, body = post_brightpearl(id="7")
    assert status == 202 and body["accepted"] == 1 and "ignored" not in body
    assert bus.counts("brightpearl-changes", "customers-to-dataverse").active == 1
    assert store.audit.recent(ingress.INGRESS_FLOW) == []


def test_a_product_webhook_is_published_to_the_products_flow(wired):
    bus, store = wired
    status, body = post_brightpearl(resourceType="product", fullEvent="product.modified", id="1001-1002")
    assert status == 202 and body["accepted"] == 2 and "ignored" not in body
    assert bus.counts("brightpearl-changes", "products-to-dataverse").active == 1
    assert bus.counts("brightpearl-changes", "customers-to-dataverse").active == 0
    assert store.audit.recent(ingress.INGRESS_FLOW) == []


def test_a_dataverse_webhook_for_an_unmapped_table_is_audited_as_ignored(wired):
    bus, store = wired
    response = ingress_dataverse.handle(dataverse_request("lead"), dataverse_settings())
    body = json.loads(response.get_body())
    assert response.status_code == 202 and body["ignored"] == 1 and body["reason"] == IGNORED_REASON
    assert active_everywhere(bus) == 0
    [entry] = store.audit.recent(ingress.INGRESS_FLOW)
    assert (entry.entity, entry.source_system, entry.result) == ("lead", "dataverse", AuditResult.IGNORED)


def test_when_the_audit_cannot_be_written_the_sender_is_asked_to_retry():
    publisher = RecordingPublisher()
    with runtime.override(
        settings=load_settings(dict(VALUES)), publisher=publisher, state_store=FailingStore()
    ):
        status, body = post_brightpearl(
            resourceType="purchase-order", fullEvent="purchase-order.created", lifecycleEvent="created"
        )
    assert status == 503 and body["error"] == "StateStoreUnavailable" and publisher.sent == []
