"""An on-hand change is the product's stock, not its record: the ingress routes the
`product.modified.on-hand-modified` webhook as a `product-stock` notice, which only the stock
flow takes, so a stock storm does not make the products flow re-read unchanged products."""

from __future__ import annotations

import json

from shared.brightpearl.webhook import parse_brightpearl_webhook
from shared.events import ChangeNotice
from shared.flows.stock_spec import STOCK, STOCK_ENTITY
from shared.routing import routed
from shared.sync.registry import entity


def delivery(event: str) -> bytes:
    return json.dumps(
        {
            "accountCode": "acme",
            "resourceType": "product",
            "id": "1001-1003",
            "lifecycleEvent": event.split(".")[1],
            "fullEvent": event,
            "raisedOn": "2026-12-05T10:00:00Z",
            "brightpearlVersion": "5.0",
            "secret": "s",
        }
    ).encode()


def parsed(event: str) -> list[ChangeNotice]:
    return parse_brightpearl_webhook(delivery(event), account="acme", secret="s", max_ids=500)


def test_an_on_hand_webhook_becomes_a_product_stock_notice_of_the_same_ids():
    [notice] = [routed(n) for n in parsed("product.modified.on-hand-modified")]
    assert notice.entity == STOCK_ENTITY
    assert notice.ids == ("1001", "1002", "1003")
    assert notice.detail == {"event": "product.modified.on-hand-modified"}


def test_other_product_events_stay_product_notices():
    for event in ("product.modified", "product.created", "product.destroyed"):
        assert [routed(n).entity for n in parsed(event)] == ["product"]


def test_a_routed_notice_has_its_own_message_id():
    [raw] = parsed("product.modified.on-hand-modified")
    assert routed(raw).key != raw.key  # duplicate detection is per entity too


def test_only_the_stock_flow_takes_product_stock_notices():
    specs = (entity("customers"), entity("products"), STOCK)
    takers = [f.name for spec in specs for f in spec.flows if STOCK_ENTITY in f.source_entities]
    assert takers == ["stock-to-dataverse"]
