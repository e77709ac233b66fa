"""Two flows that take the same notice (products and stock both take Brightpearl `product`
notices) and both retry it publish two retry copies of one notice to one topic; each must reach
its own subscription. Were their message ids equal, the topic's duplicate detection would drop
the second and that flow's change would be lost without a trace (found by tests/e2e/products
once the stock flow was wired beside the products flow)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.bus.local import LocalBus
from shared.bus.settlement import Settlement
from shared.bus.topology import Topology
from shared.events import ChangeNotice, Envelope
from shared.outcomes import RetryLater
from shared.resilience import BackoffPolicy

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
TOPIC = "brightpearl-changes"
FLOWS = ("products-to-dataverse", "stock-to-dataverse")


def subscription(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "maxDeliveryCount": 10,
        "lockDuration": "PT1M",
        "defaultMessageTimeToLive": "P14D",
        "deadLetteringOnMessageExpiration": True,
        "deadLetteringOnFilterEvaluationExceptions": True,
        "rule": {
            "name": "$Default",
            "sqlFilter": f"entity IN ('product') AND (replay_to IS NULL OR replay_to = '{name}')",
        },
    }


TOPOLOGY = Topology.model_validate(
    {
        "schemaVersion": 1,
        "topics": [
            {
                "name": TOPIC,
                "setting": "BRIGHTPEARL_CHANGES_TOPIC",
                "requiresDuplicateDetection": True,
                "duplicateDetectionHistoryTimeWindow": "PT10M",
                "defaultMessageTimeToLive": "P14D",
                "subscriptions": [subscription(name) for name in FLOWS],
            }
        ],
    }
)


class Actions:
    def __init__(self) -> None:
        self.settled: list[str] = []

    def complete(self, message: Any) -> None:
        self.settled.append("completed")

    def abandon(self, message: Any) -> None:
        self.settled.append("abandoned")

    def deadletter(self, message: Any, **_: Any) -> None:
        self.settled.append("dead-lettered")


def notice() -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity="product",
            ids=("1000",),
            operation="created",
            source="/brightpearl/test",
            observed_at=NOW,
            version="product.created@2026-12-05T12:00:00Z",
        )
    )


def test_each_flow_gets_its_own_retry_copy_of_a_shared_notice(tmp_path: Path) -> None:
    clock = [NOW]
    bus = LocalBus(tmp_path / "bus.sqlite3", TOPOLOGY, clock=lambda: clock[0])
    try:
        envelope = notice()
        bus.publish(TOPIC, [envelope.to_message()])
        for flow in FLOWS:
            settlement = Settlement(
                bus,
                topic=TOPIC,
                subscription=flow,  # type: ignore[arg-type]
                policy=BackoffPolicy(max_attempts=5, base_delay=15, max_delay=60),
                clock=lambda: clock[0],
                rng=random.Random(1),
            )
            actions = Actions()
            assert settlement.apply(object(), envelope, RetryLater("BrightpearlUnavailable", "503"), actions)
            assert actions.settled == ["completed"]

        assert [bus.counts(TOPIC, flow).scheduled for flow in FLOWS] == [1, 1]
        clock[0] = NOW + timedelta(minutes=5)  # both copies come due, each on its own subscription
        for flow in FLOWS:
            copies = [Envelope.from_body(m.body) for m in bus.peek(TOPIC, flow, max_messages=10)]
            assert [(c.replay_to, c.attempt) for c in copies if c.replay_to] == [(flow, 2)]
    finally:
        bus.close()


def test_retry_copies_for_two_subscriptions_have_distinct_message_ids() -> None:
    envelope = notice()
    ids = {envelope.retry(flow).to_message().message_id for flow in FLOWS}
    assert len(ids) == 2 and envelope.to_message().message_id not in ids
    waited = {envelope.wait(flow, 30).to_message().message_id for flow in FLOWS}
    assert len(waited) == 2
